namespace GpuAnomaly.Models.Metrics;

/// <summary>
/// The ROC curve as sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False): one point per
/// distinct score, thresholds decreasing, the first threshold +inf (the (0, 0) point, sklearn >= 1.3).
/// Fpr[i] / Tpr[i] are the rates of predicting anomalous for score >= Thresholds[i].
/// </summary>
public sealed record RocCurve(double[] Fpr, double[] Tpr, double[] Thresholds);

/// <summary>
/// Receiver operating characteristic metrics. Label true = anomalous = positive; higher score = more anomalous.
/// Scores are sorted once (O(n log n)), so pixel-level use with millions of scores is fine.
/// </summary>
public static class Roc
{
    /// <summary>
    /// Area under the ROC curve, as sklearn's roc_auc_score: tied scores form a single ROC step, so the
    /// trapezoid over tie groups equals the Mann-Whitney U statistic with average ranks, divided by P * N.
    /// Counts are integers and the sum is exact up to the final double division.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, a NaN score, or only one class present.</exception>
    public static double Auroc(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        var (keys, tags, p) = RankedScores.Sort("Auroc", scores, labels);
        long n = keys.Length - p;
        RankedScores.CheckBothClasses("Auroc", p, keys.Length);

        // Sum over tie groups of dFP * (TP above + dTP / 2), kept doubled so it stays an integer.
        long tp = 0, twiceArea = 0;
        for (int end = keys.Length - 1; end >= 0;)
        {
            int start = RankedScores.GroupStart(keys, end);
            long dtp = 0;
            for (int i = start; i <= end; i++) if (tags[i]) dtp++;
            long dfp = end - start + 1 - dtp;
            twiceArea += dfp * (2 * tp + dtp);
            tp += dtp;
            end = start - 1;
        }
        return twiceArea / (2.0 * p * n);
    }

    /// <summary>The full ROC curve (sklearn roc_curve with drop_intermediate=False, see <see cref="RocCurve"/>).</summary>
    /// <exception cref="ArgumentException">Lengths differ, a NaN score, or only one class present.</exception>
    public static RocCurve Curve(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        var (keys, tags, p) = RankedScores.Sort("RocCurve", scores, labels);
        long n = keys.Length - p;
        RankedScores.CheckBothClasses("RocCurve", p, keys.Length);

        var fpr = new List<double> { 0.0 };
        var tpr = new List<double> { 0.0 };
        var thr = new List<double> { double.PositiveInfinity };
        long tp = 0, fp = 0;
        for (int end = keys.Length - 1; end >= 0;)
        {
            int start = RankedScores.GroupStart(keys, end);
            for (int i = start; i <= end; i++) if (tags[i]) tp++; else fp++;
            fpr.Add((double)fp / n);
            tpr.Add((double)tp / p);
            thr.Add(keys[end]);
            end = start - 1;
        }
        return new RocCurve(fpr.ToArray(), tpr.ToArray(), thr.ToArray());
    }

    /// <summary>
    /// FPR at the first threshold, going down from the highest score, whose TPR reaches
    /// <paramref name="tprTarget"/> (the usual out-of-distribution "FPR95" for 0.95): the smallest
    /// FPR among operating points with TPR >= target; no interpolation between ROC points.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Auroc"/>, or a target outside (0, 1].</exception>
    public static double FprAtTpr(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels, double tprTarget = 0.95)
    {
        if (!(tprTarget > 0 && tprTarget <= 1))
            throw new ArgumentException($"FprAtTpr: the TPR target must lie in (0, 1], got {tprTarget}");
        var (keys, tags, p) = RankedScores.Sort("FprAtTpr", scores, labels);
        long n = keys.Length - p;
        RankedScores.CheckBothClasses("FprAtTpr", p, keys.Length);

        // Compare the rate tp / p as stored in the curve (not tp against target * p), so the answer is
        // exactly what a lookup on Curve(...).Tpr gives.
        long tp = 0, fp = 0;
        for (int end = keys.Length - 1; end >= 0;)
        {
            int start = RankedScores.GroupStart(keys, end);
            for (int i = start; i <= end; i++) if (tags[i]) tp++; else fp++;
            if ((double)tp / p >= tprTarget) return (double)fp / n;
            end = start - 1;
        }
        return 1.0; // unreachable: the last point has TPR 1
    }
}
