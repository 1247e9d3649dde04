using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>Conv2d kernels for an ILGPU accelerator (CUDA or ILGPU's CPU emulator).</summary>
public sealed class Conv2dGpu
{
    public Conv2dGpu(Accelerator accelerator) => throw new NotImplementedException();

    /// <summary>The fastest applicable kernel for <paramref name="p"/>.</summary>
    public void Forward(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
        => throw new NotImplementedException();

    /// <summary>One thread per output element; documents the semantics.</summary>
    public void Direct(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
        => throw new NotImplementedException();

    /// <summary>Tiled shared-memory implicit GEMM.</summary>
    public void ImplicitGemm(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
        => throw new NotImplementedException();
}
