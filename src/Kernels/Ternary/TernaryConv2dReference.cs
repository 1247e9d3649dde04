using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>The float64 reference of <see cref="TernaryConv2dParams"/> and the exact int32 accumulators of A8.</summary>
public static class TernaryConv2dReference
{
    /// <summary>y [N, COut, OutH, OutW] in float64; w holds the ternary values [COut, K].</summary>
    public static double[] Forward(in TernaryConv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
    {
        p.Validate();
        var c = p.Conv;
        if (x.Length != c.InputElements || w.Length != c.WeightElements || scale.Length != p.ScaleElements || (c.HasBias != 0 && bias.Length != c.COut))
            throw new ArgumentException($"ternary_conv2d reference: x {x.Length}, w {w.Length}, scale {scale.Length}, bias {bias.Length} do not fit {p}");
        float[] s = [];
        int[] acc = [];
        if (p.Activations == TernaryActivations.A8) acc = AccumulateA8(p, x, w, out s);
        var y = new double[c.OutputElements];
        int outHw = c.OutH * c.OutW;
        for (int n = 0; n < c.N; n++)
        for (int co = 0; co < c.COut; co++)
        {
            double g = scale[p.ScalePerRow != 0 ? co : 0], b = c.HasBias != 0 ? bias[co] : 0.0;
            for (int o = 0; o < outHw; o++)
            {
                long at = ((long)n * c.COut + co) * outHw + o;
                double v = p.Activations == TernaryActivations.A8
                    ? acc[at] * g / s[n]
                    : g * Sum(c, x, w, n, co, o / c.OutW, o % c.OutW);
                y[at] = Conv2dReference.Activate(v + b, c.Act, c.Slope);
            }
        }
        return y;
    }

    /// <summary>A8's int32 accumulators [N, COut, OutH, OutW] and the per-image activation scales s [N].</summary>
    public static int[] AccumulateA8(in TernaryConv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w, out float[] s)
    {
        var c = p.Conv;
        long image = (long)c.CIn * c.H * c.W;
        var q = new float[x.Length]; // int8 values held as floats so Sum can be shared; every sum is exact in double
        s = new float[c.N];
        var qi = new sbyte[image];
        for (int n = 0; n < c.N; n++)
        {
            s[n] = TernaryLinearReference.QuantizeToken(x.Slice((int)(n * image), (int)image), qi);
            for (long i = 0; i < image; i++) q[n * image + i] = qi[i];
        }
        var acc = new int[c.OutputElements];
        int outHw = c.OutH * c.OutW;
        for (int n = 0; n < c.N; n++)
        for (int co = 0; co < c.COut; co++)
        for (int o = 0; o < outHw; o++)
            acc[((long)n * c.COut + co) * outHw + o] = checked((int)Sum(c, q, w, n, co, o / c.OutW, o % c.OutW));
        return acc;
    }

    private static double Sum(in Conv2dParams c, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w, int n, int co, int oy, int ox)
    {
        int cpg = c.CInPerGroup, g = co / c.COutPerGroup;
        double acc = 0;
        for (int ci = 0; ci < cpg; ci++)
        for (int kh = 0; kh < c.KH; kh++)
        {
            int iy = oy * c.StrideH - c.PadTop + kh * c.DilH;
            if (iy < 0 || iy >= c.H) continue;
            for (int kw = 0; kw < c.KW; kw++)
            {
                int ix = ox * c.StrideW - c.PadLeft + kw * c.DilW;
                if (ix < 0 || ix >= c.W) continue;
                int wv = w[((co * cpg + ci) * c.KH + kh) * c.KW + kw];
                if (wv != 0) acc += wv * (double)(x[(int)((((long)n * c.CIn + g * cpg + ci) * c.H + iy) * c.W + ix)]);
            }
        }
        return acc;
    }
}
