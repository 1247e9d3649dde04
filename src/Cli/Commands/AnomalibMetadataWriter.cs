using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// Writes the score normalization `fit` found for an ONNX model as Anomalib 1.x's metadata.json keys, over the keys
/// of the model's existing metadata (its transform, task), atomically (a temp file moved over the target).
/// </summary>
internal static class AnomalibMetadataWriter
{
    private static readonly string[] Replaced =
        ["image_threshold", "pixel_threshold", "min", "max", "pred_scores.min", "pred_scores.max", "anomaly_maps.min", "anomaly_maps.max"];

    public static void Write(string path, string? existing, MinMaxNormalization image, MinMaxNormalization? pixel, string fittedOn)
    {
        var o = existing is null ? new JsonObject()
            : JsonNode.Parse(File.ReadAllText(existing)) as JsonObject ?? throw new OnnxAnomalyModelException(existing, "expected a JSON object");
        // Validates what is kept (the same reader predict uses).
        if (existing is not null) AnomalibMetadata.Parse(existing, o);
        foreach (var key in Replaced) o.Remove(key);
        o["image_threshold"] = image.Threshold;
        o["pred_scores.min"] = image.Min;
        o["pred_scores.max"] = image.Max;
        if (pixel is not null)
        {
            o["pixel_threshold"] = pixel.Threshold;
            o["anomaly_maps.min"] = pixel.Min;
            o["anomaly_maps.max"] = pixel.Max;
        }
        o["fitted_on"] = fittedOn;
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(temp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
