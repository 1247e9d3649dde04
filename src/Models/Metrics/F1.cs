namespace GpuAnomaly.Models.Metrics;

/// <summary>
/// Anomalib's F1AdaptiveThreshold (anomalib.metrics.threshold): the threshold that maximises F1 over the
/// precision-recall curve of torchmetrics' binary_precision_recall_curve, whose thresholds are the distinct
/// scores and whose predictions are score >= threshold.
/// </summary>
public static class F1AdaptiveThreshold
{
    /// <summary>
    /// Fits the F1-maximising threshold. F1 is computed exactly as 2 TP / (2 TP + FP + FN) (Anomalib adds
    /// 1e-10 to the denominator in float32); among equal F1 values the lowest threshold wins (torch.argmax
    /// over the ascending thresholds returns the first maximum).
    /// Fallbacks as Anomalib: no anomalous label -> the maximum score; no normal label -> the minimum score.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, empty input or a NaN score.</exception>
    public static float Fit(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        var (keys, tags, p) = RankedScores.Sort("F1AdaptiveThreshold", scores, labels);
        if (p == 0) return keys[^1];
        if (p == keys.Length) return keys[0];

        // Walk thresholds from the highest down; '>=' keeps the lowest threshold among equal F1.
        long tp = 0, fp = 0, bestNum = -1, bestDen = 1;
        float best = keys[^1];
        for (int end = keys.Length - 1; end >= 0;)
        {
            int start = RankedScores.GroupStart(keys, end);
            for (int i = start; i <= end; i++) if (tags[i]) tp++; else fp++;
            long num = 2 * tp, den = 2 * tp + fp + (p - tp);
            // num / den >= bestNum / bestDen, compared exactly in integers (den <= 2n fits easily).
            if ((Int128)num * bestDen >= (Int128)bestNum * den)
            {
                bestNum = num; bestDen = den; best = keys[end];
            }
            end = start - 1;
        }
        return best;
    }
}

/// <summary>F1 score of thresholded anomaly scores against labels (true = anomalous = positive).</summary>
public static class F1Score
{
    /// <summary>
    /// F1 = 2 TP / (2 TP + FP + FN) with prediction = score > threshold, as torchmetrics' BinaryF1Score and
    /// Anomalib's post-processor (pred_label = pred_score > threshold). Note the asymmetry this inherits from
    /// Anomalib: <see cref="F1AdaptiveThreshold.Fit"/> ranks thresholds with score >= t, so scores exactly at the
    /// fitted threshold count as anomalous there and as normal here; pass <paramref name="inclusive"/> = true
    /// to use score >= threshold. Returns 0 when there are no positives and no predicted positives (torchmetrics'
    /// zero_division default).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, empty input or a NaN score.</exception>
    public static double Compute(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels, float threshold, bool inclusive = false)
    {
        if (scores.Length != labels.Length)
            throw new ArgumentException($"F1Score: scores has {scores.Length} elements but labels has {labels.Length}");
        if (scores.Length == 0)
            throw new ArgumentException("F1Score: no scores");
        RankedScores.CheckFinite("F1Score", scores);
        long tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            bool predicted = inclusive ? scores[i] >= threshold : scores[i] > threshold;
            if (predicted && labels[i]) tp++;
            else if (predicted) fp++;
            else if (labels[i]) fn++;
        }
        long den = 2 * tp + fp + fn;
        return den == 0 ? 0.0 : 2.0 * tp / den;
    }
}
