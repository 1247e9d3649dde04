using GpuAnomaly.Models.Metrics;

namespace GpuAnomaly.Models.Anomaly;

/// <summary>
/// Anomalib's min-max normalization of raw anomaly scores: clamp((x - threshold) / (max - min) + 0.5, 0, 1),
/// with min, max and threshold fitted on validation data. The threshold maps to 0.5, so a normalized
/// score above 0.5 is anomalous whatever the model's raw scale. One instance for image scores, one for
/// pixel maps (their thresholds differ).
/// </summary>
public sealed record MinMaxNormalization(float Threshold, float Min, float Max)
{
    /// <summary>
    /// {min, max, threshold} of a model config, or null while unfitted. Each must be a finite float32 with
    /// min <= max: an infinite bound makes every normalized score NaN.
    /// </summary>
    public static MinMaxNormalization? FromJson(System.Text.Json.Nodes.JsonNode? node, string name)
    {
        if (node is null) return null;
        var o = Config.ConfigJson.Object(node, name);
        if (o["threshold"] is null || o["min"] is null || o["max"] is null) return null;
        float threshold = (float)Config.ConfigJson.Number(o, "threshold"), min = (float)Config.ConfigJson.Number(o, "min"), max = (float)Config.ConfigJson.Number(o, "max");
        if (!float.IsFinite(threshold) || !float.IsFinite(min) || !float.IsFinite(max) || !(min <= max))
            throw new FormatException($"{name} {{min {min}, max {max}, threshold {threshold}}}: expected finite float32 numbers with min <= max");
        return new MinMaxNormalization(threshold, min, max);
    }

    public float Normalize(float raw)
    {
        float range = Max - Min;
        // A degenerate validation set (every score equal): anything above the threshold is anomalous.
        float v = range > 0 ? (raw - Threshold) / range + 0.5f : raw > Threshold ? 1f : raw < Threshold ? 0f : 0.5f;
        return float.IsNaN(v) ? v : Math.Clamp(v, 0f, 1f);
    }

    public void Normalize(ReadOnlySpan<float> raw, Span<float> normalized)
    {
        if (normalized.Length != raw.Length) throw new ArgumentException($"normalize: {raw.Length} scores into {normalized.Length} slots");
        for (int i = 0; i < raw.Length; i++) normalized[i] = Normalize(raw[i]);
    }

    /// <summary>
    /// Fits on validation scores. With anomalous samples among them (labels true), the threshold is the
    /// F1-adaptive one (Anomalib's F1AdaptiveThreshold); with normal samples only it is their maximum
    /// (what F1AdaptiveThreshold returns then): nothing seen in validation is flagged.
    /// </summary>
    public static MinMaxNormalization Fit(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        if (scores.Length == 0) throw new ArgumentException("normalization: no validation scores");
        if (labels.Length != scores.Length) throw new ArgumentException($"normalization: {scores.Length} scores but {labels.Length} labels");
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float s in scores)
        {
            if (!float.IsFinite(s)) throw new ArgumentException($"normalization: validation score {s} is not finite");
            min = Math.Min(min, s);
            max = Math.Max(max, s);
        }
        return new MinMaxNormalization(F1AdaptiveThreshold.Fit(scores, labels), min, max);
    }
}
