namespace GpuAnomaly.Kernels.Vim;

/// <summary>The float64 reference of <see cref="VimParams"/>: the formulas written as plainly as possible.</summary>
public static class VimReference
{
    public static double[] Forward(in VimParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        ReadOnlySpan<float> o, ReadOnlySpan<float> rt)
    {
        p.CheckLengths(x.Length, w.Length, b.Length, o.Length, rt.Length, p.OutputElements);
        int n = p.N;
        var y = new double[p.OutputElements];
        var l = new double[p.C];
        for (int s = 0; s < p.S; s++)
        {
            var xs = x.Slice(s * n, n);
            for (int c = 0; c < p.C; c++)
            {
                double acc = b[c];
                for (int j = 0; j < n; j++) acc += (double)w[c * n + j] * xs[j];
                l[c] = acc;
            }
            double sq = 0;
            for (int k = 0; k < p.ResidualDim; k++)
            {
                double z = 0;
                for (int j = 0; j < n; j++) z += (double)rt[k * n + j] * ((double)xs[j] - o[j]);
                sq += z * z;
            }
            Scores(l, Math.Sqrt(sq), p.Alpha, y.AsSpan(s * VimParams.Outputs, VimParams.Outputs));
        }
        return y;
    }

    /// <summary>The six outputs of one sample from its logits and residual norm (stable log-sum-exp).</summary>
    public static void Scores(ReadOnlySpan<double> l, double r, double alpha, Span<double> y)
    {
        double m = double.NegativeInfinity;
        foreach (double v in l) m = Math.Max(m, v);
        double sum = 0;
        foreach (double v in l) sum += Math.Exp(v - m);
        double energy = m + Math.Log(sum);
        double virt = alpha * r;
        double top = Math.Max(m, virt);
        double all = top + Math.Log(sum * Math.Exp(m - top) + Math.Exp(virt - top));
        y[VimParams.VimProbability] = Math.Exp(virt - all);
        y[VimParams.VimScore] = virt - energy;
        y[VimParams.Msp] = 1 / sum;
        y[VimParams.MaxLogit] = m;
        y[VimParams.Energy] = energy;
        y[VimParams.Residual] = r;
    }
}
