namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Float64 reference implementations of the OOD scores ViM is compared with (METHODS.md section 2;
/// the official haoqiwang/vim benchmark.py for MSP, MaxLogit, Energy, Energy+ReAct, Residual,
/// Mahalanobis and KL matching; the ViM paper's section on NuSA for NuSA). One sample at a time.
/// <para>
/// Sign convention: every method here returns an OOD score, LARGER = MORE ANOMALOUS (OOD), which is
/// what our evaluation ranks by. The papers' confidences (larger = in-distribution) are the negation:
/// MSP = -max softmax, MaxLogit = -max logit, Energy = -logsumexp, Mahalanobis = +min distance, etc.
/// (benchmark.py computes score_id = -min distance, -min KL; we drop that minus).
/// </para>
/// </summary>
public static class OodBaselines
{
    /// <summary>MSP (Hendrycks and Gimpel 2017): -max_j softmax(l)_j.</summary>
    public static double Msp(ReadOnlySpan<double> logits) => -1 / SumExpFromMax(logits, out _);

    /// <summary>MaxLogit (Hendrycks et al. 2022): -max_j l_j.</summary>
    public static double MaxLogit(ReadOnlySpan<double> logits)
    {
        double m = double.NegativeInfinity;
        foreach (double l in logits) m = Math.Max(m, l);
        return -m;
    }

    /// <summary>Energy (Liu et al. 2020, temperature 1): -logsumexp(l).</summary>
    public static double Energy(ReadOnlySpan<double> logits) => -LogSumExp(logits);

    /// <summary>
    /// Energy+ReAct (Sun et al. 2021): features clipped from above at the threshold (the 0.99 quantile
    /// of all training activations, <see cref="OodBaselineFit.ReactThreshold"/>), logits recomputed
    /// with W [C, N], b, then -logsumexp.
    /// </summary>
    public static double EnergyReact(ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, double threshold)
    {
        int n = x.Length, c = b.Length;
        CheckHead(n, w, c, "energy_react");
        var logits = new double[c];
        for (int i = 0; i < c; i++)
        {
            double acc = b[i];
            for (int j = 0; j < n; j++) acc += w[i * n + j] * Math.Min(x[j], threshold);
            logits[i] = acc;
        }
        return -LogSumExp(logits);
    }

    /// <summary>Residual (ViM paper): r = ||R^T (x - o)|| with Rt [K, N] the residual basis as rows.</summary>
    public static double Residual(ReadOnlySpan<double> x, ReadOnlySpan<double> origin, ReadOnlySpan<double> rt)
    {
        int n = x.Length;
        if (origin.Length != n || rt.Length % n != 0)
            throw new ArgumentException($"residual: x [{n}], origin [{origin.Length}], Rt {rt.Length} values do not fit");
        double sq = 0;
        for (int k = 0; k < rt.Length / n; k++)
        {
            double z = 0;
            for (int j = 0; j < n; j++) z += rt[k * n + j] * (x[j] - origin[j]);
            sq += z * z;
        }
        return Math.Sqrt(sq);
    }

    /// <summary>
    /// NuSA (Cook et al. 2022, as stated in the ViM paper): the in-distribution confidence is
    /// sqrt(||x||^2 - ||x_null(W)||^2) / ||x|| = ||projection of x onto W's row space|| / ||x||; the OOD
    /// score returned is its negation. rowSpace: an orthonormal basis of W's row space as rows [rank, N]
    /// (<see cref="OodBaselineFit.RowSpace"/>).
    /// </summary>
    public static double Nusa(ReadOnlySpan<double> x, ReadOnlySpan<double> rowSpace)
    {
        int n = x.Length;
        if (rowSpace.Length % n != 0)
            throw new ArgumentException($"nusa: x [{n}] and a row-space basis of {rowSpace.Length} values do not fit");
        double sq = 0, xx = 0;
        foreach (double v in x) xx += v * v;
        for (int k = 0; k < rowSpace.Length / n; k++)
        {
            double z = 0;
            for (int j = 0; j < n; j++) z += rowSpace[k * n + j] * x[j];
            sq += z * z;
        }
        return -Math.Sqrt(sq / xx);
    }

    /// <summary>
    /// Mahalanobis (Lee et al. 2018, as in benchmark.py without input preprocessing): min over classes k
    /// of (x - mu_k)^T P (x - mu_k), P the precision of the shared (class-centered) covariance; larger = OOD.
    /// means [K, N], precision [N, N].
    /// </summary>
    public static double Mahalanobis(ReadOnlySpan<double> x, ReadOnlySpan<double> means, ReadOnlySpan<double> precision)
    {
        int n = x.Length;
        if (means.Length % n != 0 || precision.Length != (long)n * n)
            throw new ArgumentException($"mahalanobis: x [{n}], means {means.Length} values, precision {precision.Length} values do not fit");
        var dlt = new double[n];
        double best = double.PositiveInfinity;
        for (int k = 0; k < means.Length / n; k++)
        {
            for (int j = 0; j < n; j++) dlt[j] = x[j] - means[k * n + j];
            double q = 0;
            for (int a = 0; a < n; a++)
            {
                double row = 0;
                for (int j = 0; j < n; j++) row += precision[a * n + j] * dlt[j];
                q += dlt[a] * row;
            }
            best = Math.Min(best, q);
        }
        return best;
    }

    /// <summary>
    /// KL matching (Hendrycks et al. 2022, as in benchmark.py): min over templates q_k of
    /// KL(p || q_k) = sum_{p_i != 0} p_i log(p_i / q_i), p = softmax(l); templates [T, C] are the mean
    /// training softmax of the samples predicted as each class; larger = OOD.
    /// </summary>
    public static double KlMatching(ReadOnlySpan<double> logits, ReadOnlySpan<double> templates)
    {
        int c = logits.Length;
        if (templates.Length % c != 0 || templates.Length == 0)
            throw new ArgumentException($"kl_matching: {c} logits and {templates.Length} template values do not fit");
        var p = Softmax(logits);
        double best = double.PositiveInfinity;
        for (int k = 0; k < templates.Length / c; k++)
        {
            double kl = 0;
            for (int i = 0; i < c; i++)
                if (p[i] != 0) kl += p[i] * Math.Log(p[i] / templates[k * c + i]);
            best = Math.Min(best, kl);
        }
        return best;
    }

    public static double LogSumExp(ReadOnlySpan<double> logits)
    {
        double sum = SumExpFromMax(logits, out double m);
        return m + Math.Log(sum);
    }

    public static double[] Softmax(ReadOnlySpan<double> logits)
    {
        double sum = SumExpFromMax(logits, out double m);
        var p = new double[logits.Length];
        for (int i = 0; i < p.Length; i++) p[i] = Math.Exp(logits[i] - m) / sum;
        return p;
    }

    /// <summary>sum_j exp(l_j - max l), with the max.</summary>
    private static double SumExpFromMax(ReadOnlySpan<double> logits, out double m)
    {
        if (logits.Length == 0) throw new ArgumentException("ood: no logits");
        m = double.NegativeInfinity;
        foreach (double l in logits) m = Math.Max(m, l);
        double sum = 0;
        foreach (double l in logits) sum += Math.Exp(l - m);
        return sum;
    }

    private static void CheckHead(int n, ReadOnlySpan<double> w, int c, string op)
    {
        if (w.Length != (long)c * n)
            throw new ArgumentException($"{op}: W has {w.Length} values, expected [{c}, {n}]");
    }
}
