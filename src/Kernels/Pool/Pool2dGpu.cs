using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Pool;

/// <summary>MaxPool2d / AvgPool2d kernels for an ILGPU accelerator.</summary>
public sealed class Pool2dGpu
{
    public Pool2dGpu(Accelerator accelerator) => throw new NotImplementedException();

    public void Forward(in Pool2dParams p, ArrayView<float> x, ArrayView<float> y) => throw new NotImplementedException();
}
