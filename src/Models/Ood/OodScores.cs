namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Every OOD score of one sample, LARGER = MORE OOD for all of them (see <see cref="OodBaselines"/> for the
/// formulas and their sources): Vim = alpha r - logsumexp(l) (benchmark.py's ViM score negated),
/// VimProbability = the virtual class's softmax probability.
/// </summary>
public sealed record OodScores(double Vim, double VimProbability, double Msp, double MaxLogit, double Energy,
    double EnergyReact, double Residual, double Nusa, double Mahalanobis, double KlMatching)
{
    /// <summary>The score names in the order of <see cref="ToArray"/> (the `ood` command's JSON keys).</summary>
    public static readonly string[] Names =
        ["vim", "vim_probability", "msp", "max_logit", "energy", "energy_react", "residual", "nusa", "mahalanobis", "kl_matching"];

    public double[] ToArray() => [Vim, VimProbability, Msp, MaxLogit, Energy, EnergyReact, Residual, Nusa, Mahalanobis, KlMatching];

    /// <summary>
    /// All scores of feature vector x [N] in float64, from the head W [C, N], b [C] and the two fits (the
    /// reference path; the fused kernels compute ViM, MSP, MaxLogit, Energy and the residual faster).
    /// </summary>
    public static OodScores Compute(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, VimFitResult vim, OodBaselineFit baselines)
    {
        int n = x.Length, c = b.Length;
        if (w.Length != (long)c * n || vim.FeatureDim != n || vim.Classes != c || baselines.FeatureDim != n || baselines.Classes != c)
            throw new ArgumentException($"ood_scores: x [{n}], W {w.Length} values, b [{c}] do not match the fits (ViM N={vim.FeatureDim} C={vim.Classes}, " +
                $"baselines N={baselines.FeatureDim} C={baselines.Classes})");
        var xd = VimFit.ToDouble(x);
        var wd = VimFit.ToDouble(w);
        var bd = VimFit.ToDouble(b);
        var logits = new double[c];
        for (int i = 0; i < c; i++)
        {
            double acc = bd[i];
            for (int j = 0; j < n; j++) acc += wd[i * n + j] * xd[j];
            logits[i] = acc;
        }
        double r = OodBaselines.Residual(xd, VimFit.ToDouble(vim.Origin), VimFit.ToDouble(vim.ResidualBasisT));
        double lse = OodBaselines.LogSumExp(logits);
        double virt = vim.Alpha * r;
        double top = Math.Max(lse, virt);
        double all = top + Math.Log(Math.Exp(lse - top) + Math.Exp(virt - top));
        return new OodScores(
            Vim: virt - lse,
            VimProbability: Math.Exp(virt - all),
            Msp: OodBaselines.Msp(logits),
            MaxLogit: OodBaselines.MaxLogit(logits),
            Energy: -lse,
            EnergyReact: OodBaselines.EnergyReact(xd, wd, bd, baselines.ReactThreshold),
            Residual: r,
            Nusa: OodBaselines.Nusa(xd, baselines.RowSpace),
            Mahalanobis: OodBaselines.Mahalanobis(xd, baselines.ClassMeans, baselines.Precision),
            KlMatching: OodBaselines.KlMatching(logits, baselines.KlTemplates));
    }
}
