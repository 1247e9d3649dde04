namespace GpuAnomaly.Kernels.Pool;

/// <summary>Float64 host reference of <see cref="Pool2dParams"/>: the definition every other implementation is checked against.</summary>
public static class Pool2dReference
{
    /// <param name="x">[N, C, H, W].</param>
    /// <param name="y">[N, C, OutH, OutW], every element written. A max window that holds only
    /// padding (possible with dilation) gives -infinity, as in PyTorch.</param>
    public static void Forward(in Pool2dParams p, ReadOnlySpan<float> x, Span<double> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || y.Length != p.OutputElements)
            throw new ArgumentException($"pool2d reference: input has {x.Length} elements (expected {p.InputElements}), " +
                                        $"output {y.Length} (expected {p.OutputElements}) for {p}");
        int oh = p.OutH, ow = p.OutW;
        for (int plane = 0; plane < p.N * p.C; plane++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            double max = double.NegativeInfinity, sum = 0;
            int inBounds = 0;
            for (int ky = 0; ky < p.KH; ky++)
            {
                int iy = oy * p.StrideH - p.PadH + ky * p.DilH;
                if ((uint)iy >= (uint)p.H) continue;
                for (int kx = 0; kx < p.KW; kx++)
                {
                    int ix = ox * p.StrideW - p.PadW + kx * p.DilW;
                    if ((uint)ix >= (uint)p.W) continue;
                    double v = x[(plane * p.H + iy) * p.W + ix];
                    max = Math.Max(max, v);
                    sum += v;
                    inBounds++;
                }
            }
            // ceil_mode = False: a window never passes the padded border, so with padding counted it holds KH*KW elements.
            y[(plane * oh + oy) * ow + ox] = p.Kind == PoolKind.Max ? max
                : sum / (p.CountIncludePad != 0 ? p.KH * p.KW : inBounds);
        }
    }
}
