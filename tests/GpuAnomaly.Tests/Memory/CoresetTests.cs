using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Memory;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Memory;

/// <summary>
/// Greedy k-center coreset kernels (cpu SIMD, ILGPU on ilgpu-cpu) against the float64 reference on random shapes:
/// odd N, D = 1, Projected 0 and above D, Count 1 and N, duplicate points; outputs poisoned first. Picks must match
/// exactly up to the first step whose top-2 candidates are a near tie (float32 may then go either way).
/// </summary>
public class CoresetTests : IClassFixture<IlgpuCpuFixture>
{
    /// <summary>Relative gap between the reference's best and second-best candidates below which a step is a near tie.</summary>
    private const double TieGap = 1e-3;
    private readonly IlgpuDevice _ilgpu;

    public CoresetTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private sealed record Case(CoresetParams P, float[] X, float[] R);

    private static Case RandomCase(Random rng, int i, int maxN)
    {
        int n = i == 0 ? 1 : rng.Next(1, maxN / 2) * 2 + 1; // odd N
        int d = i % 5 == 1 ? 1 : rng.Next(1, 40);
        int projected = i % 3 == 0 ? 0 : rng.Next(1, 70);
        int count = i % 4 == 2 ? n : i % 4 == 3 ? 1 : rng.Next(1, n + 1);
        var x = KernelLab.RandomFloats(rng, (long)n * d);
        if (i % 6 == 4 && n > 2) // duplicates: a third of the rows copy earlier rows
            for (int r = 1; r < n; r += 3) Array.Copy(x, rng.Next(0, r) * d, x, r * d, d);
        var ulSeed = (ulong)rng.NextInt64();
        var rp = projected > 0 ? CoresetProjection.Gaussian(d, projected, ulSeed) : [];
        return new Case(CoresetParams.Create(n, d, projected, count, CoresetProjection.Start(n, ulSeed)), x, rp);
    }

    /// <summary>The float64 replay of the reference's greedy loop: for each step, whether its choice of the next pick is a near tie.</summary>
    private static bool[] NearTies(Case c)
    {
        var p = c.P;
        int n = p.N, dims = p.Dims;
        var y = new double[(long)n * dims];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < dims; k++)
            {
                if (p.Projected == 0) { y[i * dims + k] = c.X[i * p.D + k]; continue; }
                double s = 0;
                for (int j = 0; j < p.D; j++) s += (double)c.X[i * p.D + j] * c.R[j * p.Projected + k];
                y[i * dims + k] = s;
            }
        var min = new double[n];
        Array.Fill(min, double.PositiveInfinity);
        var tie = new bool[p.Count];
        int pick = p.Start;
        for (int t = 0; t < p.Count; t++)
        {
            double best = double.NegativeInfinity, second = double.NegativeInfinity;
            int next = 0;
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int k = 0; k < dims; k++) { double e = y[i * dims + k] - y[pick * dims + k]; s += e * e; }
                min[i] = Math.Min(min[i], s);
                if (min[i] > best) { second = best; best = min[i]; next = i; }
                else if (min[i] > second) second = min[i];
            }
            // best = 0: every point left duplicates a pick; float32 also gives exact zeros and the lowest index.
            tie[t] = best > 0 && best - second <= TieGap * best;
            pick = next;
        }
        return tie;
    }

    private static void Check(Case c, int[] selected, float[] min, string context)
    {
        var p = c.P;
        var refSel = new int[p.Count];
        var refMin = new float[p.N];
        MemoryReference.Coreset(p, c.X, c.R, refSel, refMin);
        var tie = NearTies(c);
        bool agree = true;
        for (int t = 0; t < p.Count; t++)
        {
            Assert.True(selected[t] == refSel[t], $"{context}: pick {t} is {selected[t]}, reference {refSel[t]} ({p})");
            if (tie[t]) { agree = false; break; } // pick t + 1 may legitimately differ
        }
        Assert.All(selected, s => Assert.InRange(s, 0, p.N - 1));
        // Coverage: the largest min distance is the farthest point's distance to its nearest pick (brute force).
        var y = Projected(c);
        float radius = min.Max();
        double brute = 0;
        for (int i = 0; i < p.N; i++)
        {
            double near = double.PositiveInfinity;
            foreach (int s in selected)
            {
                double d2 = 0;
                for (int k = 0; k < p.Dims; k++) { double e = y[i * p.Dims + k] - y[s * p.Dims + k]; d2 += e * e; }
                near = Math.Min(near, d2);
            }
            brute = Math.Max(brute, near);
        }
        Assert.True(Math.Abs(radius - brute) <= 1e-4 * brute + 1e-6, $"{context}: radius {radius}, brute force {brute} ({p})");
        if (!agree) return;
        Assert.True(Math.Abs(radius - refMin.Max()) <= 1e-4 * refMin.Max() + 1e-6, $"{context}: radius {radius}, reference {refMin.Max()} ({p})");
        double err = KernelLab.RelL2(min, refMin.Select(v => (double)v).ToArray());
        Assert.True(err < 1e-4, $"{context}: min distances rel L2 {err:E2} ({p})");
    }

    private static double[] Projected(Case c)
    {
        var p = c.P;
        var y = new double[(long)p.N * p.Dims];
        for (int i = 0; i < p.N; i++)
            for (int k = 0; k < p.Dims; k++)
            {
                if (p.Projected == 0) { y[i * p.Dims + k] = c.X[i * p.D + k]; continue; }
                double s = 0;
                for (int j = 0; j < p.D; j++) s += (double)c.X[i * p.D + j] * c.R[j * p.Projected + k];
                y[i * p.Dims + k] = s;
            }
        return y;
    }

    private static (int[] Selected, float[] Min) RunCpu(Case c)
    {
        var sel = new int[c.P.Count];
        Array.Fill(sel, -1);
        var min = new float[c.P.N];
        KernelLab.Poison(min);
        CoresetCpu.Forward(c.P, c.X, c.R, sel, min);
        return (sel, min);
    }

    private (int[] Selected, float[] Min) RunGpu(Case c)
    {
        var acc = _ilgpu.Accelerator;
        using var x = acc.Allocate1D(c.X);
        using var r = acc.Allocate1D(c.R.Length == 0 ? [0f] : c.R);
        var selInit = new int[c.P.Count];
        Array.Fill(selInit, -1);
        using var sel = acc.Allocate1D(selInit);
        var minInit = new float[c.P.N];
        KernelLab.Poison(minInit);
        using var min = acc.Allocate1D(minInit);
        new CoresetGpu(acc).Forward(c.P, x.View, c.R.Length == 0 ? default : r.View, sel.View, min.View);
        acc.Synchronize();
        return (sel.GetAsArray1D(), min.GetAsArray1D());
    }

    [Fact]
    public void CpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 60; i++)
        {
            var c = i == 5 ? RandomCase(rng, 2, 9000) : RandomCase(rng, i, 300); // one case above the parallel chunk
            var (sel, min) = RunCpu(c);
            Check(c, sel, min, $"seed {seed}, case {i}, cpu");
            var (sel2, min2) = RunCpu(c);
            Assert.Equal(sel, sel2);
            Assert.Equal(min, min2);
        }
    }

    [Fact]
    public void IlgpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 8; i++)
        {
            var c = RandomCase(rng, i, 40);
            var (sel, min) = RunGpu(c);
            Check(c, sel, min, $"seed {seed}, case {i}, ilgpu");
            if (i == 2) Assert.Equal(sel, RunGpu(c).Selected);
        }
    }

    [Fact]
    public void Projection_IsDeterministic()
    {
        Assert.Equal(CoresetProjection.Gaussian(7, 5, 42), CoresetProjection.Gaussian(7, 5, 42));
        Assert.NotEqual(CoresetProjection.Gaussian(7, 5, 42), CoresetProjection.Gaussian(7, 5, 43));
        Assert.Equal(CoresetProjection.Start(1000, 9), CoresetProjection.Start(1000, 9));
    }

    [Fact]
    public void BadParams_Throw()
    {
        var x = new float[12];
        Assert.Throws<ArgumentException>(() => CoresetCpu.Forward(CoresetParams.Create(4, 3, 0, 5, 0), x, [], new int[5], new float[4]));
        Assert.Throws<ArgumentException>(() => CoresetCpu.Forward(CoresetParams.Create(4, 3, 0, 2, 4), x, [], new int[2], new float[4]));
        Assert.Throws<ArgumentException>(() => CoresetCpu.Forward(CoresetParams.Create(4, 3, 2, 2, 0), x, new float[5], new int[2], new float[4]));
        Assert.Throws<ArgumentException>(() => CoresetCpu.Forward(CoresetParams.Create(4, 3, 0, 0, 0), x, [], [], new float[4]));
    }
}
