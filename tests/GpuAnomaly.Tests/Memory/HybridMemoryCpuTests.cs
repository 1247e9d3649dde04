using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Cpu;
using GpuAnomaly.Kernels.Memory;
using Xunit;

namespace GpuAnomaly.Tests.Memory;

public class HybridMemoryCpuTests
{
    private const int O = HybridMemoryScoreParams.Outputs;

    /// <summary>Rows scaled to unit L2 norm (SpCL's features and prototypes are normalized).</summary>
    private static float[] UnitRows(Random rng, int rows, int d)
    {
        var x = KernelLab.RandomFloats(rng, (long)rows * d);
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int j = 0; j < d; j++) s += (double)x[r * d + j] * x[r * d + j];
            float inv = (float)(1 / Math.Sqrt(s));
            for (int j = 0; j < d; j++) x[r * d + j] *= inv;
        }
        return x;
    }

    private static void CheckScore(HybridMemoryScoreParams p, float[] queries, float[] memory, int seed, string context, Device? device = null)
    {
        var y = new float[p.OutputElements];
        var best = new int[p.Q];
        KernelLab.Poison(y);
        Array.Fill(best, -7);
        if (device is null) HybridMemoryCpu.Score(p, queries, memory, y, best);
        else
        {
            using var tq = device.Allocate(new Shape(p.Q, p.D));
            using var tm = device.Allocate(new Shape(p.P, p.D));
            using var ty = device.Allocate(new Shape(p.Q, O));
            using var tb = device.Allocate(new Shape(p.Q), DType.I32);
            tq.CopyFrom(queries); tm.CopyFrom(memory); ty.CopyFrom(y);
            tb.Span<int>().Fill(-7);
            device.HybridMemoryScore(p, tq, tm, ty, tb);
            device.Synchronize();
            ty.ToArray().CopyTo(y, 0);
            tb.Span<int>().CopyTo(best);
        }
        var ry = new float[p.OutputElements];
        var rb = new int[p.Q];
        MemoryReference.Score(p, queries, memory, ry, rb);
        string where = $"{context} {p} (seed {seed})";
        Assert.True(y.All(float.IsFinite), $"{where}: non-finite output");
        // Each column in its own scale: log-sum-exp ~ 1/tau, similarities <= 1, probabilities in [0, 1].
        for (int c = 0; c < O; c++)
        {
            var a = Enumerable.Range(0, p.Q).Select(q => y[q * O + c]).ToArray();
            var e = Enumerable.Range(0, p.Q).Select(q => (double)ry[q * O + c]).ToArray();
            KernelLab.AssertClose(a, e, 2e-4, $"{where} column {c}");
        }
        // The best index is determined when no other prototype's similarity is within float32 error of it.
        for (int q = 0; q < p.Q; q++)
        {
            // Determined unless another prototype is within float32 error without tying exactly (an exact tie comes
            // from a duplicate row, whose dot is computed identically: the lower index must win).
            double top = Dot(queries, q, memory, rb[q], p.D);
            bool near = false;
            for (int k = 0; k < p.P; k++)
            {
                double s = Dot(queries, q, memory, k, p.D);
                if (s != top && Math.Abs(top - s) <= 1e-5) near = true;
            }
            if (!near)
                Assert.True(best[q] == rb[q], $"{where}: query {q}: best {best[q]}, expected {rb[q]}");
            Assert.InRange(best[q], 0, p.P - 1);
        }
    }

    private static double Dot(float[] x, int i, float[] m, int k, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[i * d + j] * m[k * d + j];
        return s;
    }

    private static HybridMemoryScoreParams RandomParams(Random rng) =>
        HybridMemoryScoreParams.Create(rng.Next(3) == 0 ? 1 : rng.Next(1, 50), rng.Next(1, 900), rng.Next(4) == 0 ? rng.Next(1, 4) : rng.Next(1, 200),
            rng.Next(2) == 0 ? 0.05f : (float)(0.02 + rng.NextDouble()));

    [Fact]
    public void ScoreRandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 50; i++)
        {
            var p = RandomParams(rng);
            CheckScore(p, UnitRows(rng, p.Q, p.D), UnitRows(rng, p.P, p.D), seed, $"case {i}");
        }
        var big = HybridMemoryScoreParams.Create(130, 3001, 64);
        CheckScore(big, UnitRows(rng, big.Q, big.D), UnitRows(rng, big.P, big.D), seed, "larger");
        var one = HybridMemoryScoreParams.Create(1, 40000, 32);
        CheckScore(one, UnitRows(rng, one.Q, one.D), UnitRows(rng, one.P, one.D), seed, "one query, many prototypes");
    }

    [Fact]
    public void ScoreTiesTakeTheLowerIndex()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (int q in new[] { 1, 20 })
        {
            int distinct = 11, n = 500, d = 24;
            var rows = UnitRows(rng, distinct, d);
            var memory = new float[n * d];
            for (int i = 0; i < n; i++) Array.Copy(rows, (i * 5 % distinct) * d, memory, i * d, d);
            var p = HybridMemoryScoreParams.Create(q, n, d);
            CheckScore(p, UnitRows(rng, q, d), memory, seed, "duplicates");
        }
    }

    [Fact]
    public void ScoreAvx2AndDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        Sgemm.ForceVector256 = true;
        try
        {
            for (int i = 0; i < 10; i++)
            {
                var p = RandomParams(rng);
                CheckScore(p, UnitRows(rng, p.Q, p.D), UnitRows(rng, p.P, p.D), seed, $"AVX2 case {i}");
            }
        }
        finally { Sgemm.ForceVector256 = false; }
        using var device = new CpuDevice();
        var dp = HybridMemoryScoreParams.Create(17, 257, 33);
        CheckScore(dp, UnitRows(rng, dp.Q, dp.D), UnitRows(rng, dp.P, dp.D), seed, "device", device);
    }

    [Fact]
    public void UpdateMatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        for (int i = 0; i < 30; i++)
        {
            int n = rng.Next(1, 60), d = rng.Next(1, 100), b = rng.Next(1, 20);
            var p = HybridMemoryUpdateParams.Create(n, d, b, i % 5 == 0 ? 1f : (float)rng.NextDouble(), normalize: i % 3 != 2);
            var memory = UnitRows(rng, n, d);
            var features = UnitRows(rng, b, d);
            // Repeated indices are applied in batch order; some features cancel their row to exactly zero.
            var indices = Enumerable.Range(0, b).Select(_ => rng.Next(Math.Min(n, 4))).ToArray();
            var expected = memory.ToArray();
            MemoryReference.Update(p, expected, features, indices);
            float[] actual;
            if (i % 4 == 0)
            {
                using var tm = device.Allocate(new Shape(n, d));
                using var tf = device.Allocate(new Shape(b, d));
                using var ti = device.Allocate(new Shape(b), DType.I32);
                tm.CopyFrom(memory); tf.CopyFrom(features);
                indices.CopyTo(ti.Span<int>());
                device.HybridMemoryUpdate(p, tm, tf, ti);
                device.Synchronize();
                actual = tm.ToArray();
            }
            else
            {
                actual = memory.ToArray();
                HybridMemoryCpu.Update(p, actual, features, indices);
            }
            KernelLab.AssertClose(actual, expected.Select(v => (double)v).ToArray(), 1e-5, $"update case {i} {p} (seed {seed})");
        }
    }

    [Fact]
    public void UpdateZeroRowStaysZero()
    {
        var rng = KernelLab.NewRng(out int seed);
        int d = 37;
        var f = UnitRows(rng, 1, d);
        var memory = new float[2 * d];
        for (int j = 0; j < d; j++) { memory[j] = -f[j]; memory[d + j] = f[j]; }
        // m v + (1 - m) f = 0.5 (f - f) = 0 exactly: the row must come out zero, not NaN.
        HybridMemoryCpu.Update(HybridMemoryUpdateParams.Create(2, d, 1, 0.5f), memory, f, [0]);
        Assert.True(memory.AsSpan(0, d).ToArray().All(v => v == 0f), $"zero row (seed {seed})");
        Assert.Equal(f, memory.AsSpan(d, d).ToArray());
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Score(HybridMemoryScoreParams.Create(2, 3, 4), new float[8], new float[12], new float[5], new int[2]));
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Score(HybridMemoryScoreParams.Create(2, 3, 4, 0f), new float[8], new float[12], new float[6], new int[2]));
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Score(HybridMemoryScoreParams.Create(2, 3, 4), new float[8], new float[12], new float[6], new int[1]));
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Update(HybridMemoryUpdateParams.Create(3, 4, 1), new float[12], new float[4], [3]));
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Update(HybridMemoryUpdateParams.Create(3, 4, 1, 1.5f), new float[12], new float[4], [0]));
        Assert.Throws<ArgumentException>(() => HybridMemoryCpu.Update(HybridMemoryUpdateParams.Create(3, 4, 2), new float[12], new float[4], [0, 1]));
    }
}
