namespace GpuAnomaly.Kernels.Conv;

/// <summary>Float64 host reference of <see cref="Conv2dParams"/>: the definition every other implementation is checked against.</summary>
public static class Conv2dReference
{
    /// <param name="bias">[COut], or empty when p.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<double> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != p.WeightElements || y.Length != p.OutputElements
            || (p.HasBias != 0 && bias.Length != p.COut))
            throw new ArgumentException($"conv2d reference: buffer sizes do not match {p}");
        int oh = p.OutH, ow = p.OutW, cig = p.CInPerGroup, cog = p.COutPerGroup;
        for (int n = 0; n < p.N; n++)
        for (int co = 0; co < p.COut; co++)
        {
            int g = co / cog;
            for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                double acc = p.HasBias != 0 ? bias[co] : 0.0;
                for (int ci = 0; ci < cig; ci++)
                {
                    int c = g * cig + ci;
                    for (int ky = 0; ky < p.KH; ky++)
                    {
                        int iy = oy * p.StrideH - p.PadTop + ky * p.DilH;
                        if ((uint)iy >= (uint)p.H) continue;
                        for (int kx = 0; kx < p.KW; kx++)
                        {
                            int ix = ox * p.StrideW - p.PadLeft + kx * p.DilW;
                            if ((uint)ix >= (uint)p.W) continue;
                            acc += (double)x[((n * p.CIn + c) * p.H + iy) * p.W + ix]
                                 * w[((co * cig + ci) * p.KH + ky) * p.KW + kx];
                        }
                    }
                }
                y[((n * p.COut + co) * oh + oy) * ow + ox] = Activate(acc, p.Act, p.Slope);
            }
        }
    }

    public static double Activate(double v, Activation act, float slope) => act switch
    {
        Activation.Relu => v > 0 ? v : 0,
        Activation.LeakyRelu => v >= 0 ? v : v * slope,
        _ => v,
    };
}
