using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Memory;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>
    /// Greedy k-center coreset, checked by replaying the device's own picks in float64 (the reference's projection):
    /// "coreset.picks" is the share of steps whose pick is not a farthest point within a relative
    /// <see cref="CoresetTieGap"/> (the first pick must be Start); "coreset" is the device's min distances against
    /// the float64 min distances to the device's picks. Comparing pick indices with the reference instead fails on
    /// near ties, where float32 may rightly go the other way and every later pick differs (seen once in ~7 runs).
    /// </summary>
    private static void CheckCoreset(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        for (int i = 0; i < cases; i++)
        {
            int n = rng.Next(1, small ? 60 : 5000), d = rng.Next(1, small ? 24 : 200);
            int projected = rng.Next(3) == 0 ? 0 : rng.Next(1, small ? 32 : 129);
            ulong seed = (ulong)rng.NextInt64();
            var p = CoresetParams.Create(n, d, projected, rng.Next(1, Math.Min(n, small ? 20 : 500) + 1), CoresetProjection.Start(n, seed));
            progress?.Invoke($"coreset {p}");
            var x = Floats(rng, p.FeatureElements);
            var r = projected > 0 ? CoresetProjection.Gaussian(d, projected, seed) : [];
            using var xt = Upload(device, x);
            using var rt = projected > 0 ? Upload(device, r) : null;
            using var sel = device.Allocate(new Shape(p.Count), DType.I32, "check coreset picks");
            device.CopyFromHost(MemoryMarshal.AsBytes(PoisonedInts(p.Count).AsSpan()), sel);
            var min = Poisoned(device, n, m => device.Coreset(p, xt, rt, sel, m));
            var picks = new int[p.Count];
            device.CopyToHost(sel, MemoryMarshal.AsBytes(picks.AsSpan()));
            double bad = ReplayPicks(p, x, r, picks, out var replayMin, out var magnitude);
            results.Add(new("coreset", p.ToString(), RelL2(min, replayMin, magnitude), Tolerance));
            results.Add(new("coreset.picks", p.ToString(), bad, Tolerance));
        }
    }

    /// <summary>Relative gap to the farthest point within which a pick still counts as farthest (float32 distances).</summary>
    private const double CoresetTieGap = 1e-3;

    /// <summary>
    /// Replays picks in float64: returns the share of steps that are not a valid greedy choice (an index outside
    /// the points, a first pick other than Start, or a point nearer than the farthest by more than the tie gap) and
    /// every point's min squared distance to the picks, with the size of what cancels in it (<paramref name="magnitude"/>):
    /// float32 gets a projected coordinate only to eps * sum_j |x_j r_j| and a difference y_i - y_pick to eps times the
    /// sum of both, so a min distance s carries an error of about 2 eps * sum_c |y_i - y_pick| (|y_i| + |y_pick|)_abs.
    /// Relative to ||min|| alone, late picks in one projected dimension (tiny gaps between large coordinates) fail a
    /// correct kernel (seen: N=3020 D=8 projected=1 count=284 at 2.3e-5).
    /// </summary>
    private static double ReplayPicks(in CoresetParams p, float[] x, float[] r, int[] picks, out double[] min, out double[] magnitude)
    {
        int n = p.N, dims = p.Dims;
        var y = new double[(long)n * dims];
        var yAbs = new double[(long)n * dims];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < dims; c++)
            {
                long at = (long)i * dims + c;
                if (p.Projected == 0) { y[at] = x[i * p.D + c]; yAbs[at] = Math.Abs(y[at]); continue; }
                double s = 0, a = 0;
                for (int j = 0; j < p.D; j++)
                {
                    double t = (double)x[i * p.D + j] * r[j * p.Projected + c];
                    s += t;
                    a += Math.Abs(t);
                }
                y[at] = s;
                yAbs[at] = a;
            }
        min = new double[n];
        magnitude = new double[n];
        Array.Fill(min, double.PositiveInfinity);
        int bad = 0;
        for (int t = 0; t < p.Count; t++)
        {
            int pick = picks[t];
            if ((uint)pick >= (uint)n) { bad += p.Count - t; break; }
            if (t == 0 ? pick != p.Start : min[pick] < min.Max() * (1 - CoresetTieGap)) bad++;
            for (int i = 0; i < n; i++)
            {
                double s = 0, m = 0;
                for (int c = 0; c < dims; c++)
                {
                    long at = (long)i * dims + c, atPick = (long)pick * dims + c;
                    double e = y[at] - y[atPick];
                    s += e * e;
                    m += 2 * Math.Abs(e) * (yAbs[at] + yAbs[atPick]);
                }
                if (s < min[i]) { min[i] = s; magnitude[i] = s + m; }
            }
        }
        return bad / (double)p.Count;
    }
}
