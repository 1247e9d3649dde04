using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Cpu;
using GpuAnomaly.Kernels.Knn;
using Xunit;

namespace GpuAnomaly.Tests.Knn;

public class KnnCpuTests
{
    private const double Tolerance = 1e-4;

    private static KnnParams RandomParams(Random rng)
    {
        int q = rng.Next(4) == 0 ? 1 : rng.Next(1, 40);
        int n = rng.Next(1, 700), d = rng.Next(4) == 0 ? rng.Next(1, 4) : rng.Next(1, 200);
        int k = rng.Next(4) switch { 0 => 1, 1 => Math.Min(n, KnnParams.MaxK), _ => rng.Next(1, Math.Min(n, KnnParams.MaxK) + 1) };
        return KnnParams.Create(q, n, d, k, rng.Next(2) == 0 ? KnnMetric.L2 : KnnMetric.InnerProduct);
    }

    /// <summary>
    /// Runs KnnCpu (poisoned outputs) against the float64 reference: distances by relative L2; an index exactly wherever
    /// the reference's neighbouring distances differ from it by more than the float32 error (or tie it exactly: then
    /// the lower index must come first).
    /// </summary>
    internal static void Check(KnnParams p, float[] queries, float[] bank, int seed, string context, Device? device = null)
    {
        var norms = new float[p.NormElements];
        if (p.Metric == KnnMetric.L2) KnnCpu.RowNorms(p.N, p.D, bank, norms);
        var dist = new float[p.OutputElements];
        var idx = new int[p.OutputElements];
        KernelLab.Poison(dist);
        Array.Fill(idx, -7);
        if (device is null) KnnCpu.Forward(p, queries, bank, norms, dist, idx);
        else RunOnDevice(device, p, queries, bank, norms, dist, idx);

        // One more reference neighbour (when there is one) to tell whether the k-th index is determined.
        int kr = Math.Min(p.N, Math.Min(KnnParams.MaxK, p.K + 1));
        var rp = KnnParams.Create(p.Q, p.N, p.D, kr, p.Metric);
        var rd = new float[rp.OutputElements];
        var ri = new int[rp.OutputElements];
        var exact = new double[rp.OutputElements];
        KnnReference.Forward(rp, queries, bank, rd, ri, exact);
        var expected = new double[p.OutputElements];
        for (int q = 0; q < p.Q; q++)
            for (int i = 0; i < p.K; i++) expected[q * p.K + i] = exact[q * kr + i];
        string where = $"{context} {p} (seed {seed})";
        Assert.True(dist.All(float.IsFinite), $"{where}: non-finite distance");
        // L2 distances come from ||q||^2 + ||m||^2 - 2 q.m: measured against those terms' size (a near match cancels).
        var magnitude = new double[p.OutputElements];
        for (int q = 0; q < p.Q; q++)
            for (int i = 0; i < p.K; i++)
                magnitude[q * p.K + i] = p.Metric == KnnMetric.L2
                    ? Norm2(queries, q, p.D) + Norm2(bank, ri[q * kr + i], p.D) : Math.Abs(expected[q * p.K + i]);
        KernelLab.AssertCloseToMagnitude(dist, expected, magnitude, Tolerance, where);

        double maxBank = 0;
        for (int i = 0; i < p.N; i++) maxBank = Math.Max(maxBank, Norm2(bank, i, p.D));
        for (int q = 0; q < p.Q; q++)
        {
            double qn = Norm2(queries, q, p.D);
            double tol = p.Metric == KnnMetric.L2 ? 1e-5 * (qn + maxBank) + 1e-30 : 1e-5 * Math.Sqrt(qn * maxBank) + 1e-30;
            for (int i = 0; i < p.K; i++)
            {
                double e = exact[q * kr + i];
                // k = 64 = MaxK leaves no reference neighbour past the last rank: it cannot be told from the 65th.
                bool determined = i < kr - 1 || kr == p.N;
                for (int j = Math.Max(0, i - 1); j <= Math.Min(kr - 1, i + 1); j++)
                    if (j != i && exact[q * kr + j] != e && Math.Abs(exact[q * kr + j] - e) <= tol) determined = false;
                if (determined)
                    Assert.True(ri[q * kr + i] == idx[q * p.K + i],
                        $"{where}: query {q} rank {i}: index {idx[q * p.K + i]}, expected {ri[q * kr + i]} (distance {e})");
                Assert.InRange(idx[q * p.K + i], 0, p.N - 1);
            }
        }
    }

    private static double Norm2(float[] x, int row, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[row * d + j] * x[row * d + j];
        return s;
    }

    private static void RunOnDevice(Device device, KnnParams p, float[] queries, float[] bank, float[] norms, float[] dist, int[] idx)
    {
        using var tq = device.Allocate(new Shape(p.Q, p.D));
        using var tb = device.Allocate(new Shape(p.N, p.D));
        using var tn = device.Allocate(new Shape(p.N));
        using var td = device.Allocate(new Shape(p.Q, p.K));
        using var ti = device.Allocate(new Shape(p.Q, p.K), DType.I32);
        tq.CopyFrom(queries);
        tb.CopyFrom(bank);
        device.RowNorms(p.N, p.D, tb, tn);
        td.CopyFrom(dist);
        ti.Span<int>().Fill(-7);
        device.Knn(p, tq, tb, p.Metric == KnnMetric.L2 ? tn : null, td, ti);
        device.Synchronize();
        td.ToArray().CopyTo(dist, 0);
        ti.Span<int>().CopyTo(idx);
        var devNorms = tn.ToArray();
        var refNorms = new float[p.N];
        RowNormsReference.Forward(p.N, p.D, bank, refNorms);
        KernelLab.AssertClose(devNorms, refNorms.Select(v => (double)v).ToArray(), 1e-5, "row norms on the device");
    }

    private static void Check(KnnParams p, Random rng, int seed, string context) =>
        Check(p, KernelLab.RandomFloats(rng, p.QueryElements), KernelLab.RandomFloats(rng, p.BankElements), seed, context);

    [Fact]
    public void RandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 60; i++) Check(RandomParams(rng), rng, seed, $"case {i}");
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(1, 5, 1, 5)]
    [InlineData(3, 1000, 7, 64)]
    [InlineData(97, 517, 129, 9)]
    [InlineData(200, 1031, 64, 1)]
    [InlineData(9, 300, 260, 64)]
    [InlineData(1, 20000, 33, 10)]
    [InlineData(1100, 300, 260, 9)] // several query blocks (BankTiles.PackedABytes), the last one shorter
    public void EdgeShapesMatchReference(int q, int n, int d, int k)
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
            Check(KnnParams.Create(q, n, d, k, metric), rng, seed, "edge");
    }

    [Fact]
    public void RowNormsMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var (n, d) in new[] { (1, 1), (7, 15), (300, 129), (5000, 64) })
        {
            var x = KernelLab.RandomFloats(rng, (long)n * d);
            var y = new float[n];
            var r = new float[n];
            KernelLab.Poison(y);
            KnnCpu.RowNorms(n, d, x, y);
            RowNormsReference.Forward(n, d, x, r);
            KernelLab.AssertClose(y, r.Select(v => (double)v).ToArray(), 1e-5, $"row norms N={n} D={d} (seed {seed})");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(50)]
    public void DuplicateBankRowsComeOutLowerIndexFirst(int q)
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
        {
            // 37 distinct rows, each repeated at spread-out positions: equal distances must keep index order.
            int distinct = 37, n = 611, d = 19;
            var rows = KernelLab.RandomFloats(rng, distinct * d);
            var bank = new float[n * d];
            for (int i = 0; i < n; i++) Array.Copy(rows, (i * 7 % distinct) * d, bank, i * d, d);
            var queries = KernelLab.RandomFloats(rng, q * d);
            var p = KnnParams.Create(q, n, d, 40, metric);
            Check(p, queries, bank, seed, "duplicates");
        }
    }

    [Fact]
    public void ThroughTheCpuDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        foreach (var p in new[] { KnnParams.Create(13, 333, 21, 9), KnnParams.Create(1, 2000, 128, 10), KnnParams.Create(40, 100, 16, 3, KnnMetric.InnerProduct) })
            Check(p, KernelLab.RandomFloats(rng, p.QueryElements), KernelLab.RandomFloats(rng, p.BankElements), seed, "device", device);
    }

    [Fact]
    public void Avx2MicroKernelMatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        Sgemm.ForceVector256 = true;
        try
        {
            for (int i = 0; i < 15; i++) Check(RandomParams(rng), rng, seed, $"AVX2 case {i}");
            Check(KnnParams.Create(31, 777, 150, 64), rng, seed, "AVX2 larger");
        }
        finally { Sgemm.ForceVector256 = false; }
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        var q = new float[6];
        var b = new float[9];
        var nrm = new float[3];
        Assert.Throws<ArgumentException>(() => KnnCpu.Forward(KnnParams.Create(2, 3, 3, 4), q, b, nrm, new float[8], new int[8]));
        Assert.Throws<ArgumentException>(() => KnnCpu.Forward(KnnParams.Create(2, 3, 3, 0), q, b, nrm, new float[0], new int[0]));
        Assert.Throws<ArgumentException>(() => KnnCpu.Forward(KnnParams.Create(2, 3, 3, 2), q, b, new float[2], new float[4], new int[4]));
        Assert.Throws<ArgumentException>(() => KnnCpu.Forward(KnnParams.Create(2, 3, 3, 2), q, new float[8], nrm, new float[4], new int[4]));
        Assert.Throws<ArgumentException>(() => KnnCpu.Forward(KnnParams.Create(2, 3, 3, 2), q, b, nrm, new float[4], new int[3]));
        Assert.Throws<ArgumentException>(() => KnnCpu.RowNorms(3, 3, b, new float[2]));
        Assert.Throws<ArgumentException>(() => KnnCpu.RowNorms(3, 2, b, nrm));
    }
}
