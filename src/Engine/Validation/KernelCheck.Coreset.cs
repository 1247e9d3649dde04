using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Memory;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>
    /// Greedy k-center coreset: the min distances against the float64 reference ("coreset"), and the share of picks
    /// that differ from it ("coreset.picks"; random uniform features rarely have the near ties that would excuse one).
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
            var refSel = new int[p.Count];
            var refMin = new float[n];
            MemoryReference.Coreset(p, x, r, refSel, refMin);
            using var xt = Upload(device, x);
            using var rt = projected > 0 ? Upload(device, r) : null;
            using var sel = device.Allocate(new Shape(p.Count), DType.I32, "check coreset picks");
            device.CopyFromHost(MemoryMarshal.AsBytes(PoisonedInts(p.Count).AsSpan()), sel);
            var min = Poisoned(device, n, m => device.Coreset(p, xt, rt, sel, m));
            var picks = new int[p.Count];
            device.CopyToHost(sel, MemoryMarshal.AsBytes(picks.AsSpan()));
            results.Add(new("coreset", p.ToString(), RelL2(min, refMin.Select(v => (double)v).ToArray()), Tolerance));
            results.Add(new("coreset.picks", p.ToString(), picks.Zip(refSel).Count(q => q.First != q.Second) / (double)p.Count, Tolerance));
        }
    }
}
