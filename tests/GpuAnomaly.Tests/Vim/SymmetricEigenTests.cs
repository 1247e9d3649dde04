using System.Diagnostics;
using GpuAnomaly.Models.Ood;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Vim;

/// <summary>The float64 symmetric eigensolver against known spectra and on random symmetric matrices.</summary>
public class SymmetricEigenTests(ITestOutputHelper output)
{
    [Fact]
    public void Diagonal_GivesItsEntriesSortedWithUnitVectors()
    {
        double[] diag = [3, -1, 7, 0.5, 7.25];
        int n = diag.Length;
        var a = new double[n * n];
        for (int i = 0; i < n; i++) a[i * n + i] = diag[i];
        var eig = SymmetricEigen.Compute(a, n);
        Assert.Equal([7.25, 7, 3, 0.5, -1], eig.Values);
        int[] expectedIndex = [4, 2, 0, 3, 1];
        for (int i = 0; i < n; i++) Assert.Equal(1.0, Math.Abs(eig.Vectors[i][expectedIndex[i]]), 12);
    }

    [Fact]
    public void TwoByTwo_MatchesClosedForm()
    {
        // [[a, b], [b, d]]: (a + d)/2 +- sqrt(((a - d)/2)^2 + b^2)
        double av = 2, bv = -3, dv = 5;
        var eig = SymmetricEigen.Compute([av, bv, bv, dv], 2);
        double mid = (av + dv) / 2, rad = Math.Sqrt((av - dv) * (av - dv) / 4 + bv * bv);
        Assert.Equal(mid + rad, eig.Values[0], 12);
        Assert.Equal(mid - rad, eig.Values[1], 12);
        CheckDecomposition([av, bv, bv, dv], 2, eig, 1e-12, "2x2");
    }

    [Fact]
    public void KnownSpectrum_WithRepeatedEigenvalues()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (int n in new[] { 1, 3, 17, 60 })
        {
            var q = RandomOrthogonal(rng, n);
            var lambda = new double[n];
            for (int i = 0; i < n; i++) lambda[i] = i % 3 == 0 ? 2.5 : i % 3 == 1 ? -1 : rng.NextDouble() * 10 - 5; // repeats
            var a = new double[n * n];
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++)
                    for (int k = 0; k < n; k++) a[r * n + c] += q[k][r] * lambda[k] * q[k][c];
            var eig = SymmetricEigen.Compute(a, n);
            var sorted = lambda.OrderByDescending(v => v).ToArray();
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(eig.Values[i] - sorted[i]) < 1e-11, $"seed {seed}, n {n}, eigenvalue {i}: {eig.Values[i]} vs {sorted[i]}");
            CheckDecomposition(a, n, eig, 1e-11, $"seed {seed}, n {n}");
        }
    }

    [Fact]
    public void RandomSymmetric_UpTo512()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (int n in new[] { 2, 5, 33, 128, 512 })
        {
            var a = new double[n * n];
            for (int r = 0; r < n; r++)
                for (int c = r; c < n; c++) a[r * n + c] = a[c * n + r] = rng.NextDouble() * 2 - 1;
            var sw = Stopwatch.StartNew();
            var eig = SymmetricEigen.Compute(a, n);
            output.WriteLine($"n = {n}: {sw.Elapsed.TotalMilliseconds:F1} ms");
            for (int i = 1; i < n; i++) Assert.True(eig.Values[i - 1] >= eig.Values[i], $"seed {seed}, n {n}: not sorted at {i}");
            CheckDecomposition(a, n, eig, 1e-11, $"seed {seed}, n {n}");
        }
    }

    [Fact]
    public void BadInput_Throws()
    {
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Compute(new double[5], 2));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Compute([1, double.NaN, double.NaN, 1], 2));
    }

    /// <summary>||A V - V diag(values)|| / ||A|| and ||V^T V - I|| below tol (Frobenius).</summary>
    internal static void CheckDecomposition(double[] a, int n, SymmetricEigen eig, double tol, string context)
    {
        double normA = Math.Sqrt(a.Sum(v => v * v)), res = 0, orth = 0;
        for (int i = 0; i < n; i++)
        {
            var v = eig.Vectors[i];
            for (int r = 0; r < n; r++)
            {
                double av = 0;
                for (int c = 0; c < n; c++) av += a[r * n + c] * v[c];
                double d = av - eig.Values[i] * v[r];
                res += d * d;
            }
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                for (int t = 0; t < n; t++) dot += v[t] * eig.Vectors[j][t];
                double d = dot - (i == j ? 1 : 0);
                orth += d * d;
            }
        }
        Assert.True(Math.Sqrt(res) <= tol * Math.Max(normA, 1) * n, $"{context}: ||A V - V L|| = {Math.Sqrt(res):E2} (||A|| = {normA:E2})");
        Assert.True(Math.Sqrt(orth) <= tol * n, $"{context}: ||V^T V - I|| = {Math.Sqrt(orth):E2}");
    }

    internal static double[][] RandomOrthogonal(Random rng, int n) => VimCase.OrthonormalRowsDouble(rng, n, n);
}
