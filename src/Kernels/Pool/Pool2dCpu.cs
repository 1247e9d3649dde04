namespace GpuAnomaly.Kernels.Pool;

/// <summary>MaxPool2d / AvgPool2d for the `cpu` device: managed SIMD, multi-threaded.</summary>
public static class Pool2dCpu
{
    public static void Forward(in Pool2dParams p, ReadOnlySpan<float> x, Span<float> y) => throw new NotImplementedException();
}
