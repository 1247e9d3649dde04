using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Memory;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>
    /// The memory-bank search ops against their float64 references: kNN distances ("knn", error against the size of
    /// ||q||^2 + ||m||^2 for L2, whose expanded form cancels) and the share of ranks whose index is wrong ("knn.indices":
    /// a different index only counts when its exact distance differs from the reference's at that rank, so near ties
    /// may go either way); the hybrid-memory score (worst of its three columns, each in its own scale) and update.
    /// </summary>
    private static void CheckKnn(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        const double KnnTolerance = 1e-4, ScoreTolerance = 2e-4;
        for (int i = 0; i < cases; i++)
        {
            int q = rng.Next(1, small ? 40 : 300), n = rng.Next(1, small ? 300 : 20000), d = rng.Next(1, small ? 40 : 200);
            int k = rng.Next(1, Math.Min(n, KnnParams.MaxK) + 1);
            foreach (var metric in new[] { KnnMetric.L2, KnnMetric.InnerProduct })
            {
                var p = KnnParams.Create(q, n, d, k, metric);
                progress?.Invoke($"knn {p}");
                var x = Floats(rng, p.QueryElements);
                var bank = Floats(rng, p.BankElements);
                var rd = new float[p.OutputElements];
                var ri = new int[p.OutputElements];
                var exact = new double[p.OutputElements];
                KnnReference.Forward(p, x, bank, rd, ri, exact);
                using var xt = Upload(device, x);
                using var bt = Upload(device, bank);
                using var nt = device.Allocate(new Shape(n), DType.F32, "check knn norms");
                if (metric == KnnMetric.L2) device.RowNorms(n, d, bt, nt);
                using var it = device.Allocate(new Shape(p.Q, p.K), DType.I32, "check knn indices");
                device.CopyFromHost(MemoryMarshal.AsBytes(PoisonedInts((int)p.OutputElements).AsSpan()), it);
                var dist = Poisoned(device, p.OutputElements, y => device.Knn(p, xt, bt, metric == KnnMetric.L2 ? nt : null, y, it));
                var idx = new int[p.OutputElements];
                device.CopyToHost(it, MemoryMarshal.AsBytes(idx.AsSpan()));
                var magnitude = new double[p.OutputElements];
                int wrong = 0;
                for (int r = 0; r < p.OutputElements; r++)
                {
                    int qi = r / p.K;
                    magnitude[r] = metric == KnnMetric.L2 ? SquaredNorm(x, qi, d) + SquaredNorm(bank, ri[r], d) : Math.Abs(exact[r]);
                    if (idx[r] == ri[r]) continue;
                    if ((uint)idx[r] >= (uint)n) { wrong++; continue; }
                    double got = metric == KnnMetric.L2 ? SquaredDistance(x, qi, bank, idx[r], d) : Dot(x, qi, bank, idx[r], d);
                    if (Math.Abs(got - exact[r]) > 1e-5 * (SquaredNorm(x, qi, d) + SquaredNorm(bank, idx[r], d) + magnitude[r])) wrong++;
                }
                results.Add(new("knn", p.ToString(), RelL2(dist, exact, magnitude), KnnTolerance));
                results.Add(new("knn.indices", p.ToString(), wrong / (double)p.OutputElements, Tolerance));
            }
        }
        const int O = HybridMemoryScoreParams.Outputs;
        for (int i = 0; i < cases; i++)
        {
            var p = HybridMemoryScoreParams.Create(rng.Next(1, small ? 40 : 300), rng.Next(1, small ? 300 : 20000), rng.Next(1, small ? 40 : 200),
                rng.Next(2) == 0 ? 0.05f : (float)(0.02 + rng.NextDouble()));
            progress?.Invoke($"hybrid_memory_score {p}");
            var x = UnitRows(rng, p.Q, p.D);
            var m = UnitRows(rng, p.P, p.D);
            var ry = new float[p.OutputElements];
            var rb = new int[p.Q];
            MemoryReference.Score(p, x, m, ry, rb);
            using var xt = Upload(device, x);
            using var mt = Upload(device, m);
            using var bt = device.Allocate(new Shape(p.Q), DType.I32, "check hybrid memory best");
            var y = Poisoned(device, p.OutputElements, yt => device.HybridMemoryScore(p, xt, mt, yt, bt));
            double worst = 0;
            for (int c = 0; c < O; c++)
            {
                var a = Enumerable.Range(0, p.Q).Select(r => y[r * O + c]).ToArray();
                var e = Enumerable.Range(0, p.Q).Select(r => (double)ry[r * O + c]).ToArray();
                worst = Math.Max(worst, RelL2(a, e, e));
            }
            results.Add(new("hybrid_memory_score", p.ToString(), worst, ScoreTolerance));

            int rows = rng.Next(1, small ? 60 : 5000), b = rng.Next(1, small ? 20 : 500), dim = p.D;
            var up = HybridMemoryUpdateParams.Create(rows, dim, b, (float)rng.NextDouble(), normalize: i % 2 == 0);
            var memory = UnitRows(rng, rows, dim);
            var features = UnitRows(rng, b, dim);
            var indices = Enumerable.Range(0, b).Select(_ => rng.Next(Math.Min(rows, Math.Max(1, b / 2)))).ToArray(); // repeats
            var expected = memory.ToArray();
            MemoryReference.Update(up, expected, features, indices);
            using var memt = Upload(device, memory);
            using var ft = Upload(device, features);
            using var it = device.Allocate(new Shape(b), DType.I32, "check hybrid memory indices");
            device.CopyFromHost(MemoryMarshal.AsBytes(indices.AsSpan()), it);
            device.HybridMemoryUpdate(up, memt, ft, it);
            device.Synchronize();
            var e2 = expected.Select(v => (double)v).ToArray();
            results.Add(new("hybrid_memory_update", up.ToString(), RelL2(memt.ToArray(), e2, e2), Tolerance));
        }
    }

    private static float[] UnitRows(Random rng, int rows, int d)
    {
        var x = Floats(rng, (long)rows * d);
        for (int r = 0; r < rows; r++)
        {
            float inv = (float)(1 / Math.Sqrt(SquaredNorm(x, r, d)));
            for (int j = 0; j < d; j++) x[r * d + j] *= inv;
        }
        return x;
    }

    private static double SquaredNorm(float[] x, int row, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[row * d + j] * x[row * d + j];
        return s;
    }

    private static double Dot(float[] x, int i, float[] m, int k, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[i * d + j] * m[k * d + j];
        return s;
    }

    private static double SquaredDistance(float[] x, int i, float[] m, int k, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) { double e = (double)x[i * d + j] - m[k * d + j]; s += e * e; }
        return s;
    }
}
