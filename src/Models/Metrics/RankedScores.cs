namespace GpuAnomaly.Models.Metrics;

/// <summary>
/// Scores sorted once (ascending, O(n log n)) with a per-score tag carried along, walked from the
/// highest score down in groups of equal scores: every curve here (ROC, PR, PRO) has one point per
/// distinct threshold, and all scores equal to the threshold count as predicted anomalous (score >= t).
/// </summary>
internal static class RankedScores
{
    /// <summary>Checks a (scores, labels) pair and returns the scores ascending with their labels alongside.</summary>
    public static (float[] Scores, bool[] Labels, long Positives) Sort(string op, ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        if (scores.Length != labels.Length)
            throw new ArgumentException($"{op}: scores has {scores.Length} elements but labels has {labels.Length}");
        if (scores.Length == 0)
            throw new ArgumentException($"{op}: no scores");
        var keys = scores.ToArray();
        CheckFinite(op, keys);
        var tags = labels.ToArray();
        long positives = 0;
        foreach (var l in tags) if (l) positives++;
        Array.Sort(keys, tags);
        return (keys, tags, positives);
    }

    /// <summary>NaN has no place in a ranking (sklearn raises too); +-inf are ordinary, if odd, scores.</summary>
    public static void CheckFinite(string op, ReadOnlySpan<float> scores)
    {
        for (int i = 0; i < scores.Length; i++)
            if (float.IsNaN(scores[i]))
                throw new ArgumentException($"{op}: score {i} is NaN");
    }

    /// <summary>Requires both classes: AUROC and the ROC curve are undefined otherwise (sklearn raises too).</summary>
    public static void CheckBothClasses(string op, long positives, long total)
    {
        if (positives == 0)
            throw new ArgumentException($"{op}: no positive (anomalous) labels among {total}; the metric is undefined");
        if (positives == total)
            throw new ArgumentException($"{op}: no negative (normal) labels among {total}; the metric is undefined");
    }

    /// <summary>Start of the tie group that ends (inclusive) at index <paramref name="end"/> of an ascending array.</summary>
    public static int GroupStart(float[] ascending, int end)
    {
        int start = end;
        float v = ascending[end];
        while (start > 0 && ascending[start - 1] == v) start--;
        return start;
    }
}
