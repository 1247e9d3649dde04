namespace GpuAnomaly.Kernels.Transformer;

/// <summary>Channels-last depthwise convolution in float64: the kernel lab's reference.</summary>
public static class DwConvReference
{
    public static double[] Forward(in DwConvParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, p.OutputElements);
        var y = new double[p.OutputElements];
        int oh = p.OutH, ow = p.OutW;
        for (int b = 0; b < p.B; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    for (int c = 0; c < p.C; c++)
                    {
                        double s = p.HasBias != 0 ? bias[c] : 0;
                        for (int ky = 0; ky < p.KH; ky++)
                            for (int kx = 0; kx < p.KW; kx++)
                            {
                                int iy = oy - p.PadH + ky, ix = ox - p.PadW + kx;
                                if ((uint)iy >= (uint)p.H || (uint)ix >= (uint)p.W) continue;
                                s += (double)x[((b * p.H + iy) * p.W + ix) * p.C + c] * w[(c * p.KH + ky) * p.KW + kx];
                            }
                        y[((b * oh + oy) * ow + ox) * p.C + c] = p.Act == Epilogue.Gelu ? Gelu.Reference(s) : s;
                    }
        return y;
    }
}
