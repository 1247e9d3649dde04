using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine;

namespace GpuAnomaly.Models.Anomaly;

/// <summary>An exported anomaly model (ONNX file or its metadata JSON) that cannot be used as one; names the file and the problem.</summary>
public sealed class OnnxAnomalyModelException(string file, string problem) : GpuAnomalyException($"{file}: {problem}")
{
    public string File { get; } = file;
    public string Problem { get; } = problem;
}

/// <summary>
/// The `metadata.json` Anomalib writes beside an exported model (docs/ONNX.md, "predict with an ONNX model"): the
/// thresholds and min-max statistics of its score normalization, and optionally the input normalization and size.
/// Both of Anomalib's layouts are read: 1.x's `image_threshold`, `pixel_threshold`, `pred_scores.min` / `.max`,
/// `anomaly_maps.min` / `.max`, and 0.x's shared `min` / `max`. The input transform is read from `mean` / `std`
/// (and `input_size`) keys, or from 0.x's albumentations `transform` (its Normalize and Resize).
/// </summary>
public sealed record AnomalibMetadata(
    string File,
    MinMaxNormalization? ImageScore,
    MinMaxNormalization? PixelScore,
    float[]? Mean,
    float[]? Std,
    int[]? InputSize)
{
    /// <summary>The largest metadata file read: a few hundred bytes in practice.</summary>
    public const long MaxBytes = 1 << 20;

    public static AnomalibMetadata Empty(string file) => new(file, null, null, null, null, null);

    /// <summary>`metadata.json` in the model's folder (Anomalib's layout), when there is one.</summary>
    public static string? Beside(string modelPath)
    {
        string path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, "metadata.json");
        return System.IO.File.Exists(path) ? path : null;
    }

    public static AnomalibMetadata Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new OnnxAnomalyModelException(path, "metadata file not found");
        if (info.Length > MaxBytes) throw new OnnxAnomalyModelException(path, $"metadata file of {info.Length} bytes (at most {MaxBytes})");
        JsonNode? root;
        try { root = JsonNode.Parse(System.IO.File.ReadAllText(path), documentOptions: new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw new OnnxAnomalyModelException(path, $"not valid JSON ({e.Message})"); }
        if (root is not JsonObject o) throw new OnnxAnomalyModelException(path, "expected a JSON object");
        return Parse(path, o);
    }

    public static AnomalibMetadata Parse(string path, JsonObject o)
    {
        float? image = Number(path, o, "image_threshold"), pixel = Number(path, o, "pixel_threshold");
        float? sharedMin = Number(path, o, "min"), sharedMax = Number(path, o, "max");
        float? imageMin = Number(path, o, "pred_scores.min") ?? sharedMin, imageMax = Number(path, o, "pred_scores.max") ?? sharedMax;
        float? pixelMin = Number(path, o, "anomaly_maps.min") ?? sharedMin, pixelMax = Number(path, o, "anomaly_maps.max") ?? sharedMax;
        var imageScore = Normalization(path, "image", image, imageMin, imageMax);
        // Anomalib normalizes the map only when its statistics are there; without them the map takes the image's.
        var pixelScore = Normalization(path, "pixel", pixel ?? image, pixelMin ?? imageMin, pixelMax ?? imageMax);

        float[]? mean = Floats(path, o, "mean"), std = Floats(path, o, "std");
        int[]? size = Ints(path, o, "input_size");
        if (o["transform"] is JsonObject t) ReadAlbumentations(path, t, ref mean, ref std, ref size);
        if ((mean is null) != (std is null)) throw new OnnxAnomalyModelException(path, "'mean' and 'std' go together");
        if (mean is not null && (mean.Length != std!.Length || mean.Length is not (1 or 3)))
            throw new OnnxAnomalyModelException(path, $"'mean' ({mean.Length} values) and 'std' ({std.Length}) need 1 or 3 values each");
        if (std is not null && std.Any(s => !(s > 0))) throw new OnnxAnomalyModelException(path, $"'std' [{string.Join(", ", std)}] must be positive");
        if (size is not null && (size.Length != 2 || size.Any(v => v is < 1 or > 16384)))
            throw new OnnxAnomalyModelException(path, $"'input_size' [{string.Join(", ", size)}]: expected [height, width] within 1..16384");
        return new AnomalibMetadata(path, imageScore, pixelScore, mean, std, size);
    }

    private static MinMaxNormalization? Normalization(string path, string what, float? threshold, float? min, float? max)
    {
        if (threshold is null || min is null || max is null) return null;
        if (!(min <= max)) throw new OnnxAnomalyModelException(path, $"{what} normalization: min {min} > max {max}");
        return new MinMaxNormalization(threshold.Value, min.Value, max.Value);
    }

    // Anomalib 0.x serializes its albumentations pipeline: {"transform": {"__class_fullname__": "Compose", "transforms": [...]}}.
    private static void ReadAlbumentations(string path, JsonObject t, ref float[]? mean, ref float[]? std, ref int[]? size)
    {
        var inner = t["transform"] as JsonObject ?? t;
        if (inner["transforms"] is not JsonArray steps) return;
        foreach (var step in steps.OfType<JsonObject>())
        {
            string kind = step["__class_fullname__"]?.GetValueKind() == JsonValueKind.String ? step["__class_fullname__"]!.GetValue<string>() : "";
            if (kind.EndsWith("Normalize", StringComparison.Ordinal))
            {
                // albumentations: (pixel - mean * max_pixel_value) / (std * max_pixel_value); our pixels are already in [0, 1].
                mean ??= Floats(path, step, "mean");
                std ??= Floats(path, step, "std");
            }
            else if (kind.EndsWith("Resize", StringComparison.Ordinal) && step["height"] is not null && step["width"] is not null)
                size ??= [(int)(Number(path, step, "height") ?? 0), (int)(Number(path, step, "width") ?? 0)];
        }
    }

    private static float? Number(string path, JsonObject o, string key)
    {
        var node = o[key];
        if (node is null) return null;
        // Anomalib writes tensors' values; a one-element list is a number too.
        if (node is JsonArray { Count: 1 } one) node = one[0];
        if (node is not JsonValue v || !v.TryGetValue(out double d))
            throw new OnnxAnomalyModelException(path, $"'{key}' is {node?.ToJsonString() ?? "null"}; expected a number");
        float f = (float)d;
        if (!float.IsFinite(f)) throw new OnnxAnomalyModelException(path, $"'{key}' is {d}; expected a finite float32");
        return f;
    }

    private static float[]? Floats(string path, JsonObject o, string key)
    {
        var node = o[key];
        if (node is null) return null;
        if (node is JsonValue) return [Number(path, o, key)!.Value];
        if (node is not JsonArray a || a.Count is 0 or > 4)
            throw new OnnxAnomalyModelException(path, $"'{key}' is {node.ToJsonString()}; expected a list of 1 to 4 numbers");
        var values = new float[a.Count];
        for (int i = 0; i < a.Count; i++)
            values[i] = a[i] is JsonValue v && v.TryGetValue(out double d) && float.IsFinite((float)d) ? (float)d
                : throw new OnnxAnomalyModelException(path, $"'{key}'[{i}] is {a[i]?.ToJsonString() ?? "null"}; expected a finite number");
        return values;
    }

    private static int[]? Ints(string path, JsonObject o, string key)
    {
        var f = Floats(path, o, key);
        if (f is null) return null;
        if (f.Any(v => v != MathF.Round(v))) throw new OnnxAnomalyModelException(path, $"'{key}' [{string.Join(", ", f)}]: expected integers");
        return f.Select(v => (int)v).ToArray();
    }
}
