using GpuAnomaly.Models.MemoryBank;
using Xunit;

namespace GpuAnomaly.Tests.MemoryBank;

public class PatchCoreScoringTests
{
    [Fact]
    public void Reweight_IsOneMinusSoftmaxOfTheFirstDistance()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int t = 0; t < 50; t++)
        {
            int b = rng.Next(1, 10);
            var d = Enumerable.Range(0, b).Select(_ => (float)(rng.NextDouble() * 30)).ToArray();
            float best = (float)(rng.NextDouble() * 10 + 0.1);
            double sum = d.Sum(v => Math.Exp(v));
            double expected = (1 - Math.Exp(d[0]) / sum) * best;
            Assert.True(Math.Abs(PatchCoreScoring.Reweight(best, d) - expected) <= 1e-5 * Math.Max(1, expected), $"seed {seed} case {t}");
        }
        Assert.Equal(0f, PatchCoreScoring.Reweight(3f, [2f])); // one neighbour: softmax 1, weight 0
        Assert.False(float.IsNaN(PatchCoreScoring.Reweight(1f, [1000f, 999f]))); // stable for large distances
    }

    [Theory]
    [InlineData(-1, 5, 1)]
    [InlineData(-2, 5, 2)]
    [InlineData(5, 5, 3)]
    [InlineData(6, 5, 2)]
    [InlineData(9, 5, 1)]
    [InlineData(-9, 5, 1)]
    [InlineData(3, 1, 0)]
    public void Reflect_FoldsWithoutRepeatingTheEdge(int i, int n, int expected) => Assert.Equal(expected, PatchCoreScoring.Reflect(i, n));

    [Fact]
    public void GaussianBlur_MatchesFloat64Reference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int t = 0; t < 8; t++)
        {
            int h = rng.Next(1, 30), w = rng.Next(1, 30);
            double sigma = 0.5 + rng.NextDouble() * 4;
            var img = KernelLab.RandomFloats(rng, h * w);
            int r = (int)(4 * sigma + 0.5);
            var k = Enumerable.Range(-r, 2 * r + 1).Select(i => Math.Exp(-0.5 * i * i / (sigma * sigma))).ToArray();
            double ks = k.Sum();
            var expected = new double[h * w];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int a = -r; a <= r; a++)
                        for (int e = -r; e <= r; e++)
                            expected[y * w + x] += k[a + r] / ks * k[e + r] / ks * img[PatchCoreScoring.Reflect(y + a, h) * w + PatchCoreScoring.Reflect(x + e, w)];
            PatchCoreScoring.GaussianBlur(img, h, w, sigma);
            KernelLab.AssertClose(img, expected, 1e-5, $"seed {seed} case {t}: {h}x{w} sigma {sigma:F2}");
        }
    }
}
