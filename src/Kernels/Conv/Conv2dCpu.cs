namespace GpuAnomaly.Kernels.Conv;

/// <summary>Conv2d for the `cpu` device: managed SIMD, multi-threaded.</summary>
public static class Conv2dCpu
{
    /// <param name="bias">[COut], or empty when p.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y) => throw new NotImplementedException();
}
