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

    /// <summary>Every output column against the float64 reference (relative L2 over the samples).</summary>
    public void Check(float[] y, string context, double tolerance = 1e-5)
    {
        var expected = Reference();
        KernelLab.AssertClose(y, expected, tolerance, $"{context} ({P}) all outputs");
        string[] names = ["vim_probability", "vim_score", "msp", "max_logit", "energy", "residual"];
        for (int col = 0; col < VimParams.Outputs; col++)
        {
            var a = new float[P.S];
            var e = new double[P.S];
            for (int i = 0; i < P.S; i++)
            {
                a[i] = y[i * VimParams.Outputs + col];
                e[i] = expected[i * VimParams.Outputs + col];
            }
            // Residual of K = 0 is exactly 0: RelL2 handles 0 vs 0.
            KernelLab.AssertClose(a, e, tolerance, $"{context} ({P}) column {names[col]}");
        }
    }

    public static float[] Poisoned(long n)
    {
        var a = new float[n];
        KernelLab.Poison(a);
        return a;
    }
}
