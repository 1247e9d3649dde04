namespace GpuAnomaly.Kernels.Attention;

/// <summary>
/// Float64 reference of <see cref="WindowAttentionParams"/>, written the way timm computes it: pad the map with the
/// padQkv token, roll by -Shift, cut into groups (explicit gather), scores, bias and mask, stable softmax, weighted sum,
/// scatter into the rolled map, roll back, crop. Independent of <see cref="WindowAttentionParams.SourceToken"/>.
/// </summary>
public static class WindowAttentionReference
{
    public static void Forward(in WindowAttentionParams p, ReadOnlySpan<float> qkv, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> biasTable, Span<double> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        int c = p.Channels, c3 = 3 * c, d = p.HeadDim, hp = p.PaddedH, wp = p.PaddedW;
        bool window = p.Grouping == AttentionGrouping.Window;
        int unit = p.Unit, shift = window ? p.Shift : 0;
        double scale = 1.0 / Math.Sqrt(d);
        var rolled = new double[hp * wp * c3];
        var outRolled = new double[hp * wp * c];
        for (int b = 0; b < p.B; b++)
        {
            // Padded map, then rolled: rolled[y, x] = padded[(y + shift) % Hp, (x + shift) % Wp].
            for (int y0 = 0; y0 < hp; y0++)
                for (int x0 = 0; x0 < wp; x0++)
                {
                    int py = (y0 + shift) % hp, px = (x0 + shift) % wp;
                    for (int ch = 0; ch < c3; ch++)
                        rolled[(y0 * wp + x0) * c3 + ch] = py < p.H && px < p.W
                            ? qkv[(int)(((long)b * p.Tokens + py * p.W + px) * c3 + ch)]
                            : padQkv[ch];
                }

            // Groups as lists of rolled positions (row, col), in the order the bias index assumes.
            var groups = new List<(int Y, int X)[]>();
            if (window)
            {
                for (int gy = 0; gy < hp; gy += unit)
                    for (int gx = 0; gx < wp; gx += unit)
                    {
                        var g = new (int, int)[unit * unit];
                        for (int t = 0; t < g.Length; t++) g[t] = (gy + t / unit, gx + t % unit);
                        groups.Add(g);
                    }
            }
            else
            {
                int rows = hp / unit, cols = wp / unit;
                for (int u = 0; u < unit; u++)
                    for (int v = 0; v < unit; v++)
                    {
                        var g = new (int, int)[rows * cols];
                        for (int t = 0; t < g.Length; t++) g[t] = ((t / cols) * unit + u, (t % cols) * unit + v);
                        groups.Add(g);
                    }
            }

            foreach (var g in groups)
            {
                int n = g.Length;
                var scores = new double[n];
                for (int h = 0; h < p.Heads; h++)
                    for (int i = 0; i < n; i++)
                    {
                        int qi = (g[i].Y * wp + g[i].X) * c3 + h * d;
                        double max = double.NegativeInfinity;
                        for (int j = 0; j < n; j++)
                        {
                            int kj = (g[j].Y * wp + g[j].X) * c3 + c + h * d;
                            double s = 0;
                            for (int e = 0; e < d; e++) s += rolled[qi + e] * scale * rolled[kj + e];
                            if (window && p.HasRelativeBias != 0)
                            {
                                int dy = g[i].Y - g[j].Y, dx = g[i].X - g[j].X;
                                s += biasTable[((dy + unit - 1) * (2 * unit - 1) + dx + unit - 1) * p.Heads + h];
                            }
                            if (window && shift > 0 && Region(g[i].Y, hp, unit, shift) * 3 + Region(g[i].X, wp, unit, shift)
                                != Region(g[j].Y, hp, unit, shift) * 3 + Region(g[j].X, wp, unit, shift))
                                s += -100.0;
                            scores[j] = s;
                            max = Math.Max(max, s);
                        }
                        double sum = 0;
                        for (int j = 0; j < n; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                        int oi = (g[i].Y * wp + g[i].X) * c + h * d;
                        for (int e = 0; e < d; e++)
                        {
                            double acc = 0;
                            for (int j = 0; j < n; j++) acc += scores[j] * rolled[(g[j].Y * wp + g[j].X) * c3 + 2 * c + h * d + e];
                            outRolled[oi + e] = acc / sum;
                        }
                    }
            }

            // Roll back and crop.
            for (int y0 = 0; y0 < hp; y0++)
                for (int x0 = 0; x0 < wp; x0++)
                {
                    int py = (y0 + shift) % hp, px = (x0 + shift) % wp;
                    if (py >= p.H || px >= p.W) continue;
                    for (int ch = 0; ch < c; ch++)
                        y[(int)(((long)b * p.Tokens + py * p.W + px) * c + ch)] = outRolled[(y0 * wp + x0) * c + ch];
                }
        }
    }

    /// <summary>timm's img_mask label along one axis: slices (0, -ws), (-ws, -shift), (-shift, None).</summary>
    private static int Region(int pos, int size, int ws, int shift) =>
        pos < size - ws ? 0 : pos < size - shift ? 1 : 2;
}
