using GpuAnomaly.Models.Metrics;
using Xunit;

namespace GpuAnomaly.Tests.Metrics;

public class F1Tests
{
    private static bool[] B(params int[] v) => v.Select(x => x != 0).ToArray();

    [Fact]
    public void AdaptiveThreshold_AnomalibCases()
    {
        // Anomalib's own test cases (tests/unit/metrics/test_adaptive_threshold.py).
        Assert.Equal(3.3f, F1AdaptiveThreshold.Fit([2.3f, 1.6f, 2.6f, 7.9f, 3.3f], B(0, 0, 0, 1, 1)));
        Assert.Equal(4f, F1AdaptiveThreshold.Fit([4f, 3f, 2f, 1f], B(1, 0, 0, 0)));
        Assert.Equal(1f, F1AdaptiveThreshold.Fit([4f, 3f, 2f, 1f], B(1, 1, 1, 1))); // all anomalous: min
        Assert.Equal(4f, F1AdaptiveThreshold.Fit([4f, 3f, 2f, 1f], B(0, 0, 0, 0))); // all normal: max
    }

    [Fact]
    public void AdaptiveThreshold_HandCase_AndTieGoesToLowestThreshold()
    {
        // scores 1..4, labels 0 1 0 1: t=4 F1 2/3, t=3 2/4, t=2 4/5, t=1 4/6 -> 2.
        Assert.Equal(2f, F1AdaptiveThreshold.Fit([1f, 2f, 3f, 4f], B(0, 1, 0, 1)));
        // scores 4 3 2 1, labels 1 0 0 1: t=4 F1 2/3 (P 1, R 1/2), t=1 F1 2/3 (P 1/2, R 1): the first
        // maximum over ascending thresholds (torch.argmax) is t=1.
        Assert.Equal(1f, F1AdaptiveThreshold.Fit([4f, 3f, 2f, 1f], B(1, 0, 0, 1)));
    }

    [Fact]
    public void AdaptiveThreshold_MaximisesInclusiveF1_OnRandomData()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int c = 0; c < 20; c++)
        {
            int n = rng.Next(2, 60);
            var scores = Enumerable.Range(0, n).Select(_ => (float)rng.Next(8)).ToArray();
            var labels = Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.4).ToArray();
            labels[0] = true; labels[1] = false;
            float t = F1AdaptiveThreshold.Fit(scores, labels);
            double best = scores.Distinct().Max(s => F1Score.Compute(scores, labels, s, inclusive: true));
            double lowestBest = scores.Distinct().Where(s => F1Score.Compute(scores, labels, s, inclusive: true) == best).Min();
            Assert.True(t == lowestBest, $"seed {seed} case {c}: got {t}, expected {lowestBest}");
        }
    }

    [Fact]
    public void F1Score_StrictAndInclusive()
    {
        float[] s = [0.1f, 0.5f, 0.5f, 0.9f];
        var l = B(0, 1, 0, 1);
        // > 0.5: only 0.9 predicted: TP 1, FP 0, FN 1 -> 2/3. >= 0.5: TP 2, FP 1, FN 0 -> 4/5.
        Assert.Equal(2.0 / 3, F1Score.Compute(s, l, 0.5f), 15);
        Assert.Equal(0.8, F1Score.Compute(s, l, 0.5f, inclusive: true), 15);
        Assert.Equal(0.0, F1Score.Compute(s, B(0, 0, 0, 0), 1f)); // nothing to find, nothing found
        Assert.Throws<ArgumentException>(() => F1Score.Compute(s, B(0, 1), 0.5f));
        Assert.Throws<ArgumentException>(() => F1Score.Compute([float.NaN], B(1), 0.5f));
        Assert.Throws<ArgumentException>(() => F1AdaptiveThreshold.Fit([1f, float.NaN], B(0, 1)));
    }
}
