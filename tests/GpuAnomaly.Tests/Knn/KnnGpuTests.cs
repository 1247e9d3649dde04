using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Knn;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Knn;

/// <summary>
/// The fused ILGPU kNN (<see cref="KnnGpu"/>) on ilgpu-cpu against the float64 reference: random small shapes (N not a
/// multiple of the 64-row tile, D = 1, Q = 1, k = 1, k = N, k = 64), both metrics, one split and many (the split
/// merge), duplicate rows, NaN rows; outputs poisoned first. Shapes stay small: the emulator runs every GPU thread.
/// </summary>
public class KnnGpuTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;

    public KnnGpuTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private (float[] Dist, int[] Idx) Run(KnnParams p, float[] queries, float[] bank, int splitRows)
    {
        var acc = _ilgpu.Accelerator;
        using var q = acc.Allocate1D(queries);
        using var b = acc.Allocate1D(bank);
        using var n = acc.Allocate1D<float>(p.N);
        var poison = new float[p.OutputElements];
        KernelLab.Poison(poison);
        var garbage = new int[p.OutputElements];
        Array.Fill(garbage, -7);
        using var dist = acc.Allocate1D(poison);
        using var idx = acc.Allocate1D(garbage);
        var knn = new KnnGpu(acc) { SplitRows = splitRows };
        if (p.Metric == KnnMetric.L2) knn.RowNorms(p.N, p.D, b.View, n.View);
        knn.Forward(p, q.View, b.View, p.Metric == KnnMetric.L2 ? n.View : default, dist.View, idx.View);
        acc.Synchronize();
        return (dist.GetAsArray1D(), idx.GetAsArray1D());
    }

    /// <summary>
    /// Distances by L2 error relative to the terms' magnitude; an index exactly wherever the reference's neighbouring
    /// distances are separated from it by more than float32 error (an exact tie, from a duplicate row, must come out
    /// lower index first).
    /// </summary>
    private void Check(KnnParams p, float[] queries, float[] bank, int splitRows, int seed, string context)
    {
        var (dist, idx) = Run(p, queries, bank, splitRows);
        Verify(p, queries, bank, dist, idx, $"{context} {p} split rows {splitRows} (seed {seed})");
    }

    private static void Verify(KnnParams p, float[] queries, float[] bank, float[] dist, int[] idx, string where)
    {
        int kr = Math.Min(p.N, Math.Min(KnnParams.MaxK, p.K + 1));
        var rp = KnnParams.Create(p.Q, p.N, p.D, kr, p.Metric);
        var rd = new float[rp.OutputElements];
        var ri = new int[rp.OutputElements];
        var exact = new double[rp.OutputElements];
        KnnReference.Forward(rp, queries, bank, rd, ri, exact);
        var expected = new double[p.OutputElements];
        var magnitude = new double[p.OutputElements];
        for (int q = 0; q < p.Q; q++)
            for (int i = 0; i < p.K; i++)
            {
                expected[q * p.K + i] = exact[q * kr + i];
                magnitude[q * p.K + i] = p.Metric == KnnMetric.L2
                    ? Norm2(queries, q, p.D) + Norm2(bank, ri[q * kr + i], p.D) : Math.Abs(exact[q * kr + i]);
            }
        Assert.True(dist.All(float.IsFinite), $"{where}: non-finite distance");
        KernelLab.AssertCloseToMagnitude(dist, expected, magnitude, 1e-4, where);
        double maxBank = 0;
        for (int i = 0; i < p.N; i++) maxBank = Math.Max(maxBank, Norm2(bank, i, p.D));
        for (int q = 0; q < p.Q; q++)
        {
            double qn = Norm2(queries, q, p.D);
            double tol = p.Metric == KnnMetric.L2 ? 1e-5 * (qn + maxBank) + 1e-30 : 1e-5 * Math.Sqrt(qn * maxBank) + 1e-30;
            for (int i = 0; i < p.K; i++)
            {
                double e = exact[q * kr + i];
                bool determined = i < kr - 1 || kr == p.N;
                for (int j = Math.Max(0, i - 1); j <= Math.Min(kr - 1, i + 1); j++)
                    if (j != i && exact[q * kr + j] != e && Math.Abs(exact[q * kr + j] - e) <= tol) determined = false;
                if (determined)
                    Assert.True(ri[q * kr + i] == idx[q * p.K + i],
                        $"{where}: query {q} rank {i}: index {idx[q * p.K + i]}, expected {ri[q * kr + i]} (distance {e})");
                Assert.InRange(idx[q * p.K + i], 0, p.N - 1);
            }
            Assert.True(idx.Skip(q * p.K).Take(p.K).Distinct().Count() == p.K, $"{where}: query {q} repeats an index");
        }
    }

    private static double Norm2(float[] x, int row, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[row * d + j] * x[row * d + j];
        return s;
    }

    private static int RandomSplit(Random rng) => rng.Next(3) switch { 0 => 0, 1 => 64, _ => 128 };

    [Fact]
    public void RandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 40; i++)
        {
            int q = i % 4 == 0 ? 1 : rng.Next(1, 40);
            int n = rng.Next(1, 300), d = i % 5 == 1 ? 1 : rng.Next(1, 40);
            int k = (i % 4) switch { 0 => 1, 1 => Math.Min(n, KnnParams.MaxK), 2 => n <= KnnParams.MaxK ? n : 9, _ => rng.Next(1, Math.Min(n, KnnParams.MaxK) + 1) };
            var p = KnnParams.Create(q, n, d, k, i % 2 == 0 ? KnnMetric.L2 : KnnMetric.InnerProduct);
            Check(p, KernelLab.RandomFloats(rng, p.QueryElements), KernelLab.RandomFloats(rng, p.BankElements), RandomSplit(rng), seed, $"case {i}");
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 0)]
    [InlineData(1, 5, 1, 5, 0)]
    [InlineData(3, 300, 7, 64, 64)]
    [InlineData(33, 130, 17, 9, 64)]
    [InlineData(40, 64, 40, 64, 0)]
    [InlineData(1, 1000, 8, 10, 64)]
    [InlineData(2, 257, 33, 1, 0)]
    public void EdgeShapesMatchReference(int q, int n, int d, int k, int splitRows)
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
        {
            var p = KnnParams.Create(q, n, d, k, metric);
            Check(p, KernelLab.RandomFloats(rng, p.QueryElements), KernelLab.RandomFloats(rng, p.BankElements), splitRows, seed, "edge");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(35)]
    public void DuplicateBankRowsComeOutLowerIndexFirst(int q)
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
            foreach (int splitRows in new[] { 0, 64 })
            {
                // 13 distinct rows at spread-out positions, over several tiles and splits: equal distances keep index order.
                int distinct = 13, n = 211, d = 11;
                var rows = KernelLab.RandomFloats(rng, distinct * d);
                var bank = new float[n * d];
                for (int i = 0; i < n; i++) Array.Copy(rows, (i * 7 % distinct) * d, bank, i * d, d);
                var p = KnnParams.Create(q, n, d, 40, metric);
                Check(p, KernelLab.RandomFloats(rng, q * d), bank, splitRows, seed, "duplicates");
            }
    }

    [Fact]
    public void NanRowsNeverBeatNumbers()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
            foreach (int splitRows in new[] { 0, 64 })
            {
                int q = 5, n = 80, d = 9; // 27 NaN rows, 53 numeric ones
                var bank = KernelLab.RandomFloats(rng, n * d);
                var nanRows = new HashSet<int>();
                for (int i = 0; i < n; i += 3) { nanRows.Add(i); bank[i * d + i % d] = float.NaN; }
                var queries = KernelLab.RandomFloats(rng, q * d);
                string where = $"{metric} split rows {splitRows} (seed {seed})";
                // k within the numeric rows: no NaN row may appear.
                int finite = n - nanRows.Count;
                var (dist, idx) = Run(KnnParams.Create(q, n, d, finite, metric), queries, bank, splitRows);
                Assert.True(dist.All(float.IsFinite), $"{where}: non-finite distance among {finite} numeric rows");
                Assert.True(idx.All(i => i >= 0 && i < n && !nanRows.Contains(i)), $"{where}: a NaN row or a bad index was reported");
                // k past the numeric rows: the NaN rows come last, as +inf (L2) / -inf (IP), with valid distinct indices.
                int k = Math.Min(KnnParams.MaxK, n);
                var (dist2, idx2) = Run(KnnParams.Create(q, n, d, k, metric), queries, bank, splitRows);
                float worst = metric == KnnMetric.L2 ? float.PositiveInfinity : float.NegativeInfinity;
                for (int r = 0; r < q; r++)
                {
                    var row = idx2.Skip(r * k).Take(k).ToArray();
                    Assert.True(row.All(i => i >= 0 && i < n) && row.Distinct().Count() == k, $"{where}: bad indices for query {r}");
                    Assert.True(dist2.Skip(r * k).Take(k).All(v => !float.IsNaN(v)), $"{where}: NaN distance reported");
                    Assert.True(row.Take(finite).All(i => !nanRows.Contains(i)) && dist2.Skip(r * k + finite).Take(k - finite).All(v => v == worst),
                        $"{where}: query {r}: the NaN rows are not last");
                }
                Assert.DoesNotContain(worst, dist2.Where((_, i) => !nanRows.Contains(idx2[i])));
            }
    }

    [Fact]
    public void RowNormsMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        foreach (var (n, d) in new[] { (1, 1), (7, 15), (300, 129), (1000, 3) })
        {
            var x = KernelLab.RandomFloats(rng, (long)n * d);
            var r = new float[n];
            RowNormsReference.Forward(n, d, x, r);
            using var dx = acc.Allocate1D(x);
            var poison = new float[n];
            KernelLab.Poison(poison);
            using var dy = acc.Allocate1D(poison);
            new KnnGpu(acc).RowNorms(n, d, dx.View, dy.View);
            acc.Synchronize();
            KernelLab.AssertClose(dy.GetAsArray1D(), r.Select(v => (double)v).ToArray(), 1e-5, $"row norms N={n} D={d} (seed {seed})");
        }
    }

    [Fact]
    public void ThroughTheIlgpuDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var p in new[] { KnnParams.Create(13, 333, 21, 9), KnnParams.Create(1, 700, 16, 10), KnnParams.Create(40, 100, 16, 3, KnnMetric.InnerProduct) })
        {
            var queries = KernelLab.RandomFloats(rng, p.QueryElements);
            var bank = KernelLab.RandomFloats(rng, p.BankElements);
            using var tq = _ilgpu.Allocate(new Shape(p.Q, p.D));
            using var tb = _ilgpu.Allocate(new Shape(p.N, p.D));
            using var tn = _ilgpu.Allocate(new Shape(p.N));
            using var td = _ilgpu.Allocate(new Shape(p.Q, p.K));
            using var ti = _ilgpu.Allocate(new Shape(p.Q, p.K), DType.I32);
            tq.CopyFrom(queries);
            tb.CopyFrom(bank);
            var poison = new float[p.OutputElements];
            KernelLab.Poison(poison);
            td.CopyFrom(poison);
            var garbage = new int[p.OutputElements];
            Array.Fill(garbage, -7);
            _ilgpu.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(garbage.AsSpan()), ti);
            _ilgpu.RowNorms(p.N, p.D, tb, tn);
            _ilgpu.Knn(p, tq, tb, p.Metric == KnnMetric.L2 ? tn : null, td, ti);
            _ilgpu.Synchronize();
            var dist = td.ToArray();
            var idx = new int[p.OutputElements];
            _ilgpu.CopyToHost(ti, System.Runtime.InteropServices.MemoryMarshal.AsBytes(idx.AsSpan()));
            Verify(p, queries, bank, dist, idx, $"ilgpu device {p} (seed {seed})");
        }
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        var acc = _ilgpu.Accelerator;
        using var q = acc.Allocate1D<float>(6);
        using var b = acc.Allocate1D<float>(9);
        using var nrm = acc.Allocate1D<float>(3);
        using var d8 = acc.Allocate1D<float>(8);
        using var i8 = acc.Allocate1D<int>(8);
        using var d4 = acc.Allocate1D<float>(4);
        using var i4 = acc.Allocate1D<int>(4);
        var knn = new KnnGpu(acc);
        Assert.Throws<ArgumentException>(() => knn.Forward(KnnParams.Create(2, 3, 3, 4), q.View, b.View, nrm.View, d8.View, i8.View));
        Assert.Throws<ArgumentException>(() => knn.Forward(KnnParams.Create(2, 3, 3, 2), q.View, b.View, nrm.View.SubView(0, 2), d4.View, i4.View));
        Assert.Throws<ArgumentException>(() => knn.Forward(KnnParams.Create(2, 3, 3, 2), q.View, d8.View, nrm.View, d4.View, i4.View));
        Assert.Throws<ArgumentException>(() => knn.Forward(KnnParams.Create(2, 3, 3, 2), q.View, b.View, nrm.View, d4.View, i4.View.SubView(0, 3)));
        Assert.Throws<ArgumentException>(() => knn.RowNorms(3, 3, b.View, nrm.View.SubView(0, 2)));
        Assert.Throws<ArgumentException>(() => knn.RowNorms(3, 2, b.View, nrm.View));
    }
}
