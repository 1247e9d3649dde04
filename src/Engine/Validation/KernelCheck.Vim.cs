using GpuAnomaly.Kernels.Vim;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    public static readonly IReadOnlyList<string> VimColumns = ["vim_probability", "vim_score", "msp", "max_logit", "energy", "residual"];

    /// <summary>
    /// Fused ViM scoring: all six outputs together ("vim_score"), then each column on its own ("vim_score.msp", ...),
    /// since the large columns (logits, energy) would hide an error in the small ones (probabilities) in one L2.
    /// </summary>
    private static void CheckVim(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        for (int i = 0; i < cases; i++)
        {
            int n = rng.Next(1, small ? 90 : 1025), c = rng.Next(1, small ? 14 : 1001);
            int s = rng.Next(1, small ? 4 : 65), k = rng.Next(4) == 0 ? 0 : rng.Next(0, n + 1);
            var x = Floats(rng, (long)s * n);
            var w = Floats(rng, (long)c * n, 3f / MathF.Sqrt(n));
            var b = Floats(rng, c);
            var o = Floats(rng, n, 0.5f);
            var rt = OrthonormalRows(rng, k, n);
            // alpha as the fit sets it (mean max logit / mean residual norm), times a random factor, so that the
            // virtual logit competes with the real ones.
            var probe = VimReference.Forward(VimParams.Create(s, n, c, k, 1f), x, w, b, o, rt);
            double maxLogit = 0, residual = 0;
            for (int j = 0; j < s; j++)
            {
                maxLogit += probe[j * VimParams.Outputs + VimParams.MaxLogit];
                residual += probe[j * VimParams.Outputs + VimParams.Residual];
            }
            var p = VimParams.Create(s, n, c, k, residual > 0 ? (float)(Math.Abs(maxLogit) / residual * (0.5 + rng.NextDouble())) : 1f);
            progress?.Invoke($"vim_score {p}");
            var expected = VimReference.Forward(p, x, w, b, o, rt);
            using var xt = Upload(device, x);
            using var wt = Upload(device, w);
            using var bt = Upload(device, b);
            using var ot = Upload(device, o);
            using var rtt = device.FromHost(rt, new Shape(k, n)); // [0, N] when K = 0
            var actual = Poisoned(device, p.OutputElements, y => device.VimScore(p, xt, wt, bt, ot, rtt, y));
            results.Add(new("vim_score", p.ToString(), RelL2(actual, expected), Tolerance));
            var errors = VimColumnErrors(p, x, w, b, o, actual, expected);
            for (int col = 0; col < VimParams.Outputs; col++)
                results.Add(new($"vim_score.{VimColumns[col]}", p.ToString(), errors[col], Tolerance));
        }
    }

    /// <summary>
    /// The per-column metric of ViM outputs (here and in the unit tests' VimCase.Check): relative L2 over the samples, with the reference's norm
    /// enlarged by the sizes of the terms each column sums, since logits, their log-sum-exp, residual coordinates and
    /// alpha r - E are sums that can cancel to nearly 0 for a random sample. Term sizes: sum_j |w_cj x_j| + |b_c| for
    /// logits, ||x - o|| for r (the basis is orthonormal), and for the ViM probability p its error relative to p times
    /// its exponent's terms (alpha r, E).
    /// </summary>
    public static double[] VimColumnErrors(in VimParams p, float[] x, float[] w, float[] b, float[] o, float[] y, double[] expected)
    {
        int n = p.N;
        var logitScale = new double[p.S];
        var featureScale = new double[p.S];
        for (int s = 0; s < p.S; s++)
        {
            for (int c = 0; c < p.C; c++)
            {
                double t = Math.Abs(b[c]);
                for (int j = 0; j < n; j++) t += Math.Abs((double)w[c * n + j] * x[s * n + j]);
                logitScale[s] = Math.Max(logitScale[s], t);
            }
            double sq = 0;
            for (int j = 0; j < n; j++) sq += ((double)x[s * n + j] - o[j]) * ((double)x[s * n + j] - o[j]);
            featureScale[s] = Math.Sqrt(sq);
        }
        var errors = new double[VimParams.Outputs];
        for (int col = 0; col < VimParams.Outputs; col++)
        {
            double num = 0, den = 0;
            for (int i = 0; i < p.S; i++)
            {
                double a = y[i * VimParams.Outputs + col], e = expected[i * VimParams.Outputs + col];
                num += double.IsFinite(a) ? (a - e) * (a - e) : double.PositiveInfinity;
                den += e * e;
                if (col is VimParams.MaxLogit or VimParams.Energy or VimParams.VimScore) den += logitScale[i] * logitScale[i];
                if (col == VimParams.Residual) den += featureScale[i] * featureScale[i];
                if (col == VimParams.VimProbability)
                {
                    double virt = p.Alpha * expected[i * VimParams.Outputs + VimParams.Residual];
                    double energy = expected[i * VimParams.Outputs + VimParams.Energy];
                    den += e * e * (virt * virt + energy * energy);
                }
                if (col == VimParams.VimScore) den += (double)p.Alpha * p.Alpha * featureScale[i] * featureScale[i];
            }
            errors[col] = den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den);
        }
        return errors;
    }

    /// <summary>
    /// k orthonormal rows of length n: rows of the orthonormal DCT-II (distinct random frequencies) with a random sign
    /// per column, dense like a PCA basis. Gram-Schmidt on random vectors, as the unit tests do, is O(k^2 n): seconds
    /// at n = 1024.
    /// </summary>
    private static float[] OrthonormalRows(Random rng, int k, int n)
    {
        var freq = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < k; i++)
        {
            int r = rng.Next(i, n);
            (freq[i], freq[r]) = (freq[r], freq[i]);
        }
        var sign = new double[n];
        for (int j = 0; j < n; j++) sign[j] = rng.Next(2) == 0 ? -1 : 1;
        var rows = new float[(long)k * n];
        for (int i = 0; i < k; i++)
        {
            int f = freq[i];
            double norm = f == 0 ? Math.Sqrt(1.0 / n) : Math.Sqrt(2.0 / n);
            for (int j = 0; j < n; j++) rows[(long)i * n + j] = (float)(sign[j] * norm * Math.Cos(Math.PI * (j + 0.5) * f / n));
        }
        return rows;
    }
}
