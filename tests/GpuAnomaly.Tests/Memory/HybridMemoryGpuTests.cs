using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Memory;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Memory;

/// <summary>
/// SpCL hybrid memory on ILGPU (<see cref="HybridMemoryGpu"/>) on ilgpu-cpu against the float64 reference. Score:
/// random small shapes (P not a multiple of the tile, D = 1, Q = 1), one split and many, duplicate prototypes (ties:
/// the lower index), outputs poisoned first. Update: Normalize on and off, repeated indices (batch order), a row that
/// cancels to zero.
/// </summary>
public class HybridMemoryGpuTests : IClassFixture<IlgpuCpuFixture>
{
    private const int O = HybridMemoryScoreParams.Outputs;
    private readonly IlgpuDevice _ilgpu;

    public HybridMemoryGpuTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

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

    private (float[] Y, int[] Best) RunScore(HybridMemoryScoreParams p, float[] queries, float[] memory, int splitRows)
    {
        var acc = _ilgpu.Accelerator;
        using var q = acc.Allocate1D(queries);
        using var m = acc.Allocate1D(memory);
        var poison = new float[p.OutputElements];
        KernelLab.Poison(poison);
        var garbage = new int[p.Q];
        Array.Fill(garbage, -7);
        using var y = acc.Allocate1D(poison);
        using var best = acc.Allocate1D(garbage);
        new HybridMemoryGpu(acc) { SplitRows = splitRows }.Score(p, q.View, m.View, y.View, best.View);
        acc.Synchronize();
        return (y.GetAsArray1D(), best.GetAsArray1D());
    }

    private void CheckScore(HybridMemoryScoreParams p, float[] queries, float[] memory, int splitRows, int seed, string context)
    {
        var (y, best) = RunScore(p, queries, memory, splitRows);
        VerifyScore(p, queries, memory, y, best, $"{context} {p} split rows {splitRows} (seed {seed})");
    }

    private static void VerifyScore(HybridMemoryScoreParams p, float[] queries, float[] memory, float[] y, int[] best, string where)
    {
        var ry = new float[p.OutputElements];
        var rb = new int[p.Q];
        MemoryReference.Score(p, queries, memory, ry, rb);
        Assert.True(y.All(float.IsFinite), $"{where}: non-finite output");
        // Each column in its own scale: log-sum-exp ~ 1/tau, similarities <= 1, probabilities in [0, 1].
        for (int c = 0; c < O; c++)
        {
            var a = Enumerable.Range(0, p.Q).Select(q => y[q * O + c]).ToArray();
            var e = Enumerable.Range(0, p.Q).Select(q => (double)ry[q * O + c]).ToArray();
            KernelLab.AssertClose(a, e, 2e-4, $"{where} column {c}");
        }
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
            if (!near) Assert.True(best[q] == rb[q], $"{where}: query {q}: best {best[q]}, expected {rb[q]}");
            Assert.InRange(best[q], 0, p.P - 1);
        }
    }

    private static double Dot(float[] x, int i, float[] m, int k, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[i * d + j] * m[k * d + j];
        return s;
    }

    [Fact]
    public void ScoreRandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 30; i++)
        {
            var p = HybridMemoryScoreParams.Create(i % 3 == 0 ? 1 : rng.Next(1, 40), rng.Next(1, 300), i % 5 == 1 ? 1 : rng.Next(1, 40),
                rng.Next(2) == 0 ? 0.05f : (float)(0.02 + rng.NextDouble()));
            int splitRows = rng.Next(3) switch { 0 => 0, 1 => 64, _ => 128 };
            CheckScore(p, UnitRows(rng, p.Q, p.D), UnitRows(rng, p.P, p.D), splitRows, seed, $"case {i}");
        }
        var one = HybridMemoryScoreParams.Create(1, 1500, 16);
        CheckScore(one, UnitRows(rng, one.Q, one.D), UnitRows(rng, one.P, one.D), 64, seed, "one query, many splits");
        var full = HybridMemoryScoreParams.Create(33, 129, 17, 0.5f);
        CheckScore(full, UnitRows(rng, full.Q, full.D), UnitRows(rng, full.P, full.D), 0, seed, "two query blocks");
    }

    [Fact]
    public void ScoreTiesTakeTheLowerIndex()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (int q in new[] { 1, 20 })
            foreach (int splitRows in new[] { 0, 64 })
            {
                int distinct = 11, n = 250, d = 24;
                var rows = UnitRows(rng, distinct, d);
                var memory = new float[n * d];
                for (int i = 0; i < n; i++) Array.Copy(rows, (i * 5 % distinct) * d, memory, i * d, d);
                var p = HybridMemoryScoreParams.Create(q, n, d);
                CheckScore(p, UnitRows(rng, q, d), memory, splitRows, seed, "duplicates");
            }
    }

    private float[] RunUpdate(HybridMemoryUpdateParams p, float[] memory, float[] features, int[] indices)
    {
        var acc = _ilgpu.Accelerator;
        using var m = acc.Allocate1D(memory);
        using var f = acc.Allocate1D(features);
        using var ix = acc.Allocate1D(indices);
        new HybridMemoryGpu(acc).Update(p, m.View, f.View, ix.View);
        acc.Synchronize();
        return m.GetAsArray1D();
    }

    [Fact]
    public void UpdateMatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 24; i++)
        {
            int n = rng.Next(1, 40), d = i % 7 == 3 ? 1 : rng.Next(1, 150), b = i % 5 == 4 ? 1 : rng.Next(1, 20);
            var p = HybridMemoryUpdateParams.Create(n, d, b, i % 5 == 0 ? 1f : (float)rng.NextDouble(), normalize: i % 2 == 0);
            var memory = i % 2 == 0 ? UnitRows(rng, n, d) : KernelLab.RandomFloats(rng, (long)n * d, 3f);
            var features = i % 2 == 0 ? UnitRows(rng, b, d) : KernelLab.RandomFloats(rng, (long)b * d, 3f);
            // Few distinct rows: repeated indices, applied in batch order.
            var indices = Enumerable.Range(0, b).Select(_ => rng.Next(Math.Min(n, 4))).ToArray();
            var expected = memory.ToArray();
            MemoryReference.Update(p, expected, features, indices);
            var actual = RunUpdate(p, memory, features, indices);
            Assert.True(actual.All(float.IsFinite), $"update case {i} {p}: non-finite (seed {seed})");
            KernelLab.AssertClose(actual, expected.Select(v => (double)v).ToArray(), 1e-5, $"update case {i} {p} (seed {seed})");
        }
    }

    [Fact]
    public void UpdateRepeatedIndexIsAppliedInBatchOrder()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (bool normalize in new[] { true, false })
        {
            // Row 2 three times among others: each step uses the row the previous step left (order matters for m < 1).
            int n = 5, d = 9;
            int[] indices = [2, 0, 2, 4, 2];
            var p = HybridMemoryUpdateParams.Create(n, d, indices.Length, 0.3f, normalize);
            var memory = UnitRows(rng, n, d);
            var features = UnitRows(rng, indices.Length, d);
            var expected = memory.ToArray();
            MemoryReference.Update(p, expected, features, indices);
            var actual = RunUpdate(p, memory, features, indices);
            KernelLab.AssertClose(actual, expected.Select(v => (double)v).ToArray(), 1e-5, $"batch order {p} (seed {seed})");
            // Rows 1 and 3 were not in the batch: untouched, bit for bit.
            Assert.Equal(memory.AsSpan(d, d).ToArray(), actual.AsSpan(d, d).ToArray());
            Assert.Equal(memory.AsSpan(3 * d, d).ToArray(), actual.AsSpan(3 * d, d).ToArray());
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
        var actual = RunUpdate(HybridMemoryUpdateParams.Create(2, d, 1, 0.5f), memory, f, [0]);
        Assert.True(actual.AsSpan(0, d).ToArray().All(v => v == 0f), $"zero row (seed {seed})");
        Assert.Equal(f, actual.AsSpan(d, d).ToArray());
    }

    [Fact]
    public void ThroughTheIlgpuDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        var p = HybridMemoryScoreParams.Create(17, 257, 33);
        var queries = UnitRows(rng, p.Q, p.D);
        var memory = UnitRows(rng, p.P, p.D);
        using var tq = _ilgpu.Allocate(new Shape(p.Q, p.D));
        using var tm = _ilgpu.Allocate(new Shape(p.P, p.D));
        using var ty = _ilgpu.Allocate(new Shape(p.Q, O));
        using var tb = _ilgpu.Allocate(new Shape(p.Q), DType.I32);
        tq.CopyFrom(queries);
        tm.CopyFrom(memory);
        var poison = new float[p.OutputElements];
        KernelLab.Poison(poison);
        ty.CopyFrom(poison);
        _ilgpu.HybridMemoryScore(p, tq, tm, ty, tb);
        _ilgpu.Synchronize();
        var best = new int[p.Q];
        _ilgpu.CopyToHost(tb, System.Runtime.InteropServices.MemoryMarshal.AsBytes(best.AsSpan()));
        VerifyScore(p, queries, memory, ty.ToArray(), best, $"ilgpu device {p} (seed {seed})");

        var up = HybridMemoryUpdateParams.Create(p.P, p.D, 6);
        var features = UnitRows(rng, up.B, up.D);
        int[] indices = [5, 250, 5, 0, 256, 5];
        using var tf = _ilgpu.Allocate(new Shape(up.B, up.D));
        using var ti = _ilgpu.Allocate(new Shape(up.B), DType.I32);
        tf.CopyFrom(features);
        _ilgpu.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(indices.AsSpan()), ti);
        _ilgpu.HybridMemoryUpdate(up, tm, tf, ti);
        _ilgpu.Synchronize();
        var expected = memory.ToArray();
        MemoryReference.Update(up, expected, features, indices);
        KernelLab.AssertClose(tm.ToArray(), expected.Select(v => (double)v).ToArray(), 1e-5, $"ilgpu device {up} (seed {seed})");
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        var acc = _ilgpu.Accelerator;
        using var q = acc.Allocate1D<float>(8);
        using var m = acc.Allocate1D<float>(12);
        using var y6 = acc.Allocate1D<float>(6);
        using var b2 = acc.Allocate1D<int>(2);
        using var f4 = acc.Allocate1D<float>(4);
        using var bad = acc.Allocate1D(new[] { 3 });
        using var ok = acc.Allocate1D(new[] { 0 });
        var hm = new HybridMemoryGpu(acc);
        Assert.Throws<ArgumentException>(() => hm.Score(HybridMemoryScoreParams.Create(2, 3, 4), q.View, m.View, y6.View.SubView(0, 5), b2.View));
        Assert.Throws<ArgumentException>(() => hm.Score(HybridMemoryScoreParams.Create(2, 3, 4, 0f), q.View, m.View, y6.View, b2.View));
        Assert.Throws<ArgumentException>(() => hm.Score(HybridMemoryScoreParams.Create(2, 3, 4), q.View, m.View, y6.View, b2.View.SubView(0, 1)));
        Assert.Throws<ArgumentException>(() => hm.Update(HybridMemoryUpdateParams.Create(3, 4, 1), m.View, f4.View, bad.View));
        Assert.Throws<ArgumentException>(() => hm.Update(HybridMemoryUpdateParams.Create(3, 4, 1, 1.5f), m.View, f4.View, ok.View));
        Assert.Throws<ArgumentException>(() => hm.Update(HybridMemoryUpdateParams.Create(3, 4, 2), m.View, f4.View, b2.View));
    }
}
