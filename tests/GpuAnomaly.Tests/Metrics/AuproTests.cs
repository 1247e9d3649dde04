using GpuAnomaly.Models.Metrics;
using Xunit;

namespace GpuAnomaly.Tests.Metrics;

public class AuproTests
{
    [Fact]
    public void HandComputed_OneImageTwoRegions()
    {
        // mask (4 x 2)      map
        //   # # . .         0.9 0.5 0.8 0.1
        //   . . . #         0.2 0.3 0.4 0.7
        // Regions: A = {(0,0), (1,0)} (size 2), B = {(3,1)} (size 1); 5 normal pixels.
        // Going down: t=0.9 A half -> (FPR 0, PRO 0.25); t=0.8 a normal -> (0.2, 0.25);
        // t=0.7 B -> (0.2, 0.75); t=0.5 A full -> (0.2, 1); t=0.4 a normal -> (0.4, 1).
        // Area to FPR 0.3: 0.2 * 0.25 + (0.3 - 0.2) * 1 = 0.15; / 0.3 = 0.5.
        float[] map = [0.9f, 0.5f, 0.8f, 0.1f, 0.2f, 0.3f, 0.4f, 0.7f];
        bool[] mask = [true, true, false, false, false, false, false, true];
        Assert.Equal(0.5, Aupro.Compute(map, mask, 4, 2, 1), 14);
        // To FPR 0.2 the curve ends with the vertical rise at 0.2: 0.05 / 0.2 = 0.25.
        Assert.Equal(0.25, Aupro.Compute(map, mask, 4, 2, 1, fprLimit: 0.2), 14);
        // Full curve to 1: 0.05 + 0.8 * 1 = 0.85.
        Assert.Equal(0.85, Aupro.Compute(map, mask, 4, 2, 1, fprLimit: 1.0), 14);
        var curve = Aupro.Curve(map, mask, 4, 2, 1);
        Assert.Equal(9, curve.Fpr.Length);
        Assert.Equal([0, 0.25, 0.25, 0.75, 1, 1, 1, 1, 1], curve.Pro);
    }

    [Fact]
    public void PerfectMap_ScoresOne_RegionsAreAveragedNotPooled()
    {
        // Perfect separation -> 1. Then a small region missed entirely while a big one is found: pixel-pooled
        // TPR would be 8/9, the per-region mean is 1/2 until the small one's value is reached.
        var mask = new bool[16];
        foreach (int i in new[] { 0, 1, 4, 5, 8, 9, 12, 13 }) mask[i] = true; // 2x4 block, one region
        mask[15] = true;                                                    // a lone pixel (not 8-adjacent to the block)
        var perfect = mask.Select(m => m ? 1f : 0f).ToArray();
        Assert.Equal(1.0, Aupro.Compute(perfect, mask, 4, 4, 1), 14);
        var missSmall = perfect.ToArray();
        missSmall[15] = -1f; // below every normal pixel
        Assert.Equal(0.5, Aupro.Compute(missSmall, mask, 4, 4, 1), 14);
    }

    [Fact]
    public void MatchesBruteForce_OnRandomSmallInputs()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int c = 0; c < 30; c++)
        {
            int w = rng.Next(1, 9), h = rng.Next(1, 9), count = rng.Next(1, 4), n = w * h * count;
            if (n < 2) { c--; continue; }
            int levels = rng.Next(2, 20);
            var map = Enumerable.Range(0, n).Select(_ => rng.Next(levels) / (float)levels).ToArray();
            var mask = Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.35).ToArray();
            mask[rng.Next(n)] = true;
            int off = rng.Next(n);
            if (mask.All(m => m)) mask[off] = false;
            double limit = rng.Next(3) switch { 0 => 0.3, 1 => 1.0, _ => 0.05 + 0.9 * rng.NextDouble() };
            double expected = BruteForce(map, mask, w, h, count, limit);
            double got = Aupro.Compute(map, mask, w, h, count, limit);
            Assert.True(Math.Abs(got - expected) < 1e-12, $"seed {seed} case {c} ({count}x{h}x{w}, limit {limit}): {got} vs {expected}");
        }
    }

    [Fact]
    public void Errors()
    {
        float[] map = [0.1f, 0.2f, 0.3f, 0.4f];
        Assert.Contains("no anomalous region", Assert.Throws<ArgumentException>(() => Aupro.Compute(map, new bool[4], 2, 2, 1)).Message);
        Assert.Contains("no normal", Assert.Throws<ArgumentException>(() => Aupro.Compute(map, [true, true, true, true], 2, 2, 1)).Message);
        Assert.Throws<ArgumentException>(() => Aupro.Compute(map, [true, false, false, false], 2, 2, 2));
        Assert.Throws<ArgumentException>(() => Aupro.Compute(map, [true, false, false, false], 2, 2, 1, fprLimit: 0));
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => Aupro.Compute([0f, float.NaN, 0f, 0f], [true, false, false, false], 2, 2, 1)).Message);
    }

    /// <summary>Independent reference: labels by iterated min-propagation, explicit curve over all thresholds, trapezoid.</summary>
    private static double BruteForce(float[] map, bool[] mask, int w, int h, int count, double limit)
    {
        int plane = w * h, n = map.Length;
        var id = Enumerable.Range(0, n).Select(i => mask[i] ? i + 1 : 0).ToArray();
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int i = 0; i < n; i++)
            {
                if (id[i] == 0) continue;
                int img = i / plane, y = i % plane / w, x = i % w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int ny = y + dy, nx = x + dx;
                        if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
                        int q = img * plane + ny * w + nx;
                        if (id[q] != 0 && id[q] < id[i]) { id[i] = id[q]; changed = true; }
                    }
            }
        }
        var regions = id.Where(v => v != 0).Distinct().ToArray();
        int normals = id.Count(v => v == 0);
        var pts = new List<(double Fpr, double Pro)> { (0, 0) };
        foreach (float t in map.Distinct().OrderByDescending(v => v))
        {
            double fpr = Enumerable.Range(0, n).Count(i => id[i] == 0 && map[i] >= t) / (double)normals;
            double pro = regions.Average(r => Enumerable.Range(0, n).Count(i => id[i] == r && map[i] >= t)
                                            / (double)id.Count(v => v == r));
            pts.Add((fpr, pro));
        }
        double area = 0;
        for (int k = 1; k < pts.Count; k++)
        {
            var (x0, y0) = pts[k - 1];
            var (x1, y1) = pts[k];
            if (x1 <= limit) { area += (x1 - x0) * (y0 + y1) / 2; continue; }
            double yl = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            area += (limit - x0) * (y0 + yl) / 2;
            break;
        }
        return area / limit;
    }
}
