namespace GpuAnomaly.Kernels.Pool;

/// <summary>Float64 host reference of <see cref="Pool2dParams"/>.</summary>
public static class Pool2dReference
{
    public static void Forward(in Pool2dParams p, ReadOnlySpan<float> x, Span<double> y) => throw new NotImplementedException();
}
