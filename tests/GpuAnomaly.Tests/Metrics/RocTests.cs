using GpuAnomaly.Models.Metrics;
using Xunit;

namespace GpuAnomaly.Tests.Metrics;

public class RocTests
{
    private static bool[] B(params int[] v) => v.Select(x => x != 0).ToArray();

    [Fact]
    public void Auroc_HandCases()
    {
        // sklearn's doc example: pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > both) -> 3/4.
        Assert.Equal(0.75, Roc.Auroc([0.1f, 0.4f, 0.35f, 0.8f], B(0, 0, 1, 1)), 15);
        Assert.Equal(0.5, Roc.Auroc([2f, 2f, 2f, 2f, 2f], B(0, 1, 0, 1, 1)), 15);   // all ties
        Assert.Equal(1.0, Roc.Auroc([0.1f, 0.2f, 0.7f, 0.9f], B(0, 0, 1, 1)), 15);  // perfect
        Assert.Equal(0.0, Roc.Auroc([0.1f, 0.2f, 0.7f, 0.9f], B(1, 1, 0, 0)), 15);  // inverted
        // One tie across classes: pos {1, 3}, neg {1, 2}: 3>1, 3>2, 1=1 (1/2), 1<2 -> 2.5/4.
        Assert.Equal(0.625, Roc.Auroc([1f, 3f, 1f, 2f], B(1, 1, 0, 0)), 15);
    }

    [Fact]
    public void Auroc_MatchesBruteForceMannWhitney_WithManyTies()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int c = 0; c < 40; c++)
        {
            int n = rng.Next(2, 300), levels = rng.Next(1, 12);
            var scores = new float[n];
            var labels = new bool[n];
            for (int i = 0; i < n; i++)
            {
                scores[i] = rng.Next(levels) * 0.25f - 1f;
                labels[i] = rng.NextDouble() < 0.3;
            }
            labels[0] = true; labels[1] = false;
            double pairs = 0, wins = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (labels[i] && !labels[j])
                    {
                        pairs++;
                        wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                    }
            double got = Roc.Auroc(scores, labels);
            Assert.True(Math.Abs(got - wins / pairs) < 1e-12, $"seed {seed} case {c}: {got} vs {wins / pairs}");
        }
    }

    [Fact]
    public void Curve_MatchesExplicitRatesAtEveryDistinctThreshold()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int c = 0; c < 10; c++)
        {
            int n = rng.Next(2, 80);
            var scores = Enumerable.Range(0, n).Select(_ => (float)rng.Next(10)).ToArray();
            var labels = Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.5).ToArray();
            labels[0] = true; labels[1] = false;
            var curve = Roc.Curve(scores, labels);
            var distinct = scores.Distinct().OrderByDescending(s => s).ToArray();
            Assert.Equal(distinct.Length + 1, curve.Thresholds.Length);
            Assert.Equal((0.0, 0.0, double.PositiveInfinity), (curve.Fpr[0], curve.Tpr[0], curve.Thresholds[0]));
            double p = labels.Count(l => l), q = n - p;
            for (int k = 0; k < distinct.Length; k++)
            {
                float t = distinct[k];
                double tpr = Enumerable.Range(0, n).Count(i => labels[i] && scores[i] >= t) / p;
                double fpr = Enumerable.Range(0, n).Count(i => !labels[i] && scores[i] >= t) / q;
                Assert.True(curve.Thresholds[k + 1] == t && curve.Tpr[k + 1] == tpr && curve.Fpr[k + 1] == fpr,
                    $"seed {seed} case {c} threshold {t}");
            }
            Assert.Equal(1.0, curve.Fpr[^1]);
            Assert.Equal(1.0, curve.Tpr[^1]);
        }
    }

    [Fact]
    public void FprAtTpr_HandCase()
    {
        // 20 positives scored 1..20: TPR reaches 0.95 (19/20) first at threshold 2. Negatives >= 2: 2.5 and
        // 5.5 of 5 -> FPR 0.4. At TPR 1 (threshold 1) the negatives >= 1 are 1.5, 2.5, 5.5 -> 0.6.
        var scores = Enumerable.Range(1, 20).Select(i => (float)i).Concat([1.5f, 2.5f, 5.5f, 0.5f, 0.2f]).ToArray();
        var labels = Enumerable.Range(0, 25).Select(i => i < 20).ToArray();
        Assert.Equal(0.4, Roc.FprAtTpr(scores, labels, 0.95), 15);
        Assert.Equal(0.6, Roc.FprAtTpr(scores, labels, 1.0), 15);
        Assert.Equal(0.0, Roc.FprAtTpr(scores, labels, 0.05), 15);
    }

    [Fact]
    public void Errors_AreArgumentExceptions()
    {
        Assert.Contains("labels", Assert.Throws<ArgumentException>(() => Roc.Auroc([1f, 2f], B(1))).Message);
        Assert.Contains("no positive", Assert.Throws<ArgumentException>(() => Roc.Auroc([1f, 2f], B(0, 0))).Message);
        Assert.Contains("no negative", Assert.Throws<ArgumentException>(() => Roc.Curve([1f, 2f], B(1, 1))).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => Roc.Auroc([1f, float.NaN], B(0, 1))).Message);
        Assert.Throws<ArgumentException>(() => Roc.FprAtTpr([1f, 2f], B(0, 1), 0));
        Assert.Throws<ArgumentException>(() => Roc.Auroc([], B()));
    }
}
