namespace GpuAnomaly.Kernels.Conv;

/// <summary>Float64 host reference of <see cref="Conv2dParams"/>: the definition every other implementation is checked against.</summary>
public static class Conv2dReference
{
    /// <param name="bias">[COut], or empty when p.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<double> y) => throw new NotImplementedException();
}
