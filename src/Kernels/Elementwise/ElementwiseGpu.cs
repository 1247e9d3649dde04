using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>Elementwise kernels for an ILGPU accelerator. In-place use (y aliasing x or a) is allowed.</summary>
public sealed class ElementwiseGpu
{
    public ElementwiseGpu(Accelerator accelerator) => throw new NotImplementedException();

    public void LeakyRelu(ArrayView<float> x, float slope, ArrayView<float> y) => throw new NotImplementedException();
    public void Relu(ArrayView<float> x, ArrayView<float> y) => throw new NotImplementedException();
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => throw new NotImplementedException();
}
