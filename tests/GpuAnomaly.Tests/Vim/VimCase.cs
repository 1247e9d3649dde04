using GpuAnomaly.Engine.Validation;
using GpuAnomaly.Kernels.Vim;
using Xunit;

namespace GpuAnomaly.Tests.Vim;

/// <summary>
/// One random ViM scoring problem: features, head, origin, an orthonormal residual basis (Gram-Schmidt
/// in float64) and alpha set as the official fit sets it (mean max logit / mean residual norm), times a
/// random factor, so that the virtual logit competes with the real ones.
/// </summary>
public sealed class VimCase
{
    public VimParams P;
    public float[] X = [], W = [], B = [], O = [], Rt = [];

    public static VimCase Random(Random rng, int s, int n, int c, int k)
    {
        var v = new VimCase
        {
            X = KernelLab.RandomFloats(rng, (long)s * n),
            W = KernelLab.RandomFloats(rng, (long)c * n, 3f / MathF.Sqrt(n)),
            B = KernelLab.RandomFloats(rng, c),
            O = KernelLab.RandomFloats(rng, n, 0.5f),
            Rt = OrthonormalRows(rng, k, n),
        };
        var probe = VimReference.Forward(VimParams.Create(s, n, c, k, 1f), v.X, v.W, v.B, v.O, v.Rt);
        double maxLogit = 0, r = 0;
        for (int i = 0; i < s; i++)
        {
            maxLogit += probe[i * VimParams.Outputs + VimParams.MaxLogit];
            r += probe[i * VimParams.Outputs + VimParams.Residual];
        }
        float alpha = r > 0 ? (float)(Math.Abs(maxLogit) / r * (0.5 + rng.NextDouble())) : 1f;
        v.P = VimParams.Create(s, n, c, k, alpha);
        return v;
    }

    /// <summary>k orthonormal rows of length n (k &lt;= n): modified Gram-Schmidt on random vectors, twice for accuracy.</summary>
    public static float[] OrthonormalRows(Random rng, int k, int n) =>
        OrthonormalRowsDouble(rng, k, n).SelectMany(r => r.Select(x => (float)x)).ToArray();

    public static double[][] OrthonormalRowsDouble(Random rng, int k, int n)
    {
        var rows = new double[k][];
        for (int i = 0; i < k; i++)
        {
            var r = KernelLab.RandomFloats(rng, n).Select(f => (double)f).ToArray();
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < i; j++)
                {
                    double dot = 0;
                    for (int t = 0; t < n; t++) dot += r[t] * rows[j][t];
                    for (int t = 0; t < n; t++) r[t] -= dot * rows[j][t];
                }
            double norm = Math.Sqrt(r.Sum(x => x * x));
            for (int t = 0; t < n; t++) r[t] /= norm;
            rows[i] = r;
        }
        return rows;
    }

    public double[] Reference() => VimReference.Forward(P, X, W, B, O, Rt);

    /// <summary>
    /// Every output column against the float64 reference (relative L2 over the samples). Logits, their
    /// log-sum-exp, residual coordinates and alpha r - E are sums that can cancel to nearly 0 for a random
    /// sample, so those columns' errors are measured relative to the sizes of their terms as well:
    /// sum_j |w_cj x_j| + |b_c| for logits, ||x - o|| for r (the basis is orthonormal), and the ViM
    /// probability's error relative to p times the size of its exponent's terms (alpha r, E).
    /// </summary>
    public void Check(float[] y, string context, double tolerance = 1e-5)
    {
        var expected = Reference();
        KernelLab.AssertClose(y, expected, tolerance, $"{context} ({P}) all outputs");
        // The metric is shared with `gpuanomaly check` (KernelCheck.VimColumnErrors), so a GPU is judged as CI judges.
        var errors = KernelCheck.VimColumnErrors(P, X, W, B, O, y, expected);
        for (int col = 0; col < VimParams.Outputs; col++)
            Assert.True(errors[col] <= tolerance, $"{context} ({P}) column {KernelCheck.VimColumns[col]}: relative error {errors[col]:E3} > {tolerance:E1}");
    }

    public static float[] Poisoned(long n)
    {
        var a = new float[n];
        KernelLab.Poison(a);
        return a;
    }
}
