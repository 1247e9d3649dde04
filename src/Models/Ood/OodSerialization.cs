using System.Globalization;
using System.Text.Json;

namespace GpuAnomaly.Models.Ood;

/// <summary>Reading fitted OOD statistics back: named float tensors with checked shapes and string metadata.</summary>
internal static class OodSerialization
{
    public static Dictionary<string, string> ParseMetadata(string json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(json)
                ?? throw new ArgumentException($"{what}: the metadata JSON is null");
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"{what}: the metadata is not a JSON object of strings: {ex.Message}");
        }
    }

    public static string Get(IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) ? v : throw new ArgumentException($"ood: metadata key '{key}' is missing");

    public static int Int(IReadOnlyDictionary<string, string> meta, string key) =>
        int.TryParse(Get(meta, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
            ? v : throw new ArgumentException($"ood: metadata '{key}' = '{meta[key]}' is not an integer");

    public static double Double(IReadOnlyDictionary<string, string> meta, string key) =>
        double.TryParse(Get(meta, key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v : throw new ArgumentException($"ood: metadata '{key}' = '{meta[key]}' is not a finite number");

    public static float[] Tensor(IReadOnlyDictionary<string, (float[] Data, int[] Shape)> tensors, string name, int[] shape)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new ArgumentException($"ood: tensor '{name}' is missing");
        long count = 1;
        foreach (int s in shape) count *= s;
        if (!t.Shape.SequenceEqual(shape) || t.Data.Length != count)
            throw new ArgumentException($"ood: tensor '{name}' has shape [{string.Join(", ", t.Shape)}] and {t.Data.Length} values, expected [{string.Join(", ", shape)}]");
        return t.Data;
    }
}
