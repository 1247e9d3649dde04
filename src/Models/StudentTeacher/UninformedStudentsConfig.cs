using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Models.StudentTeacher;

/// <summary>Mean and standard deviation of the regression error e and predictive variance v on anomaly-free validation images.</summary>
public sealed record ValidationStats(double EMean, double EStd, double VMean, double VStd);

/// <summary>
/// The `config` of an `uninformed_students` model file (docs/FORMATS.md): scales, input, students, the
/// per-scale validation statistics and, once `gpuanomaly fit` has run, the score normalizations.
/// </summary>
public sealed record UninformedStudentsConfig(
    int[] Scales,
    int InChannels,
    int Height,
    int Width,
    int Students,
    IReadOnlyDictionary<int, ValidationStats> Validation,
    MinMaxNormalization? ImageScore,
    MinMaxNormalization? PixelScore,
    int? NormalClass)
{
    public const string Architecture = "uninformed_students";

    public static UninformedStudentsConfig Parse(string path, IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("architecture", out var arch) || arch != Architecture)
            throw new SafetensorsException(path, null, $"__metadata__ 'architecture' is '{arch ?? "(missing)"}', expected '{Architecture}'");
        if (!meta.TryGetValue("config", out var json)) throw new SafetensorsException(path, null, "__metadata__ has no 'config'");
        try
        {
            var r = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException("config is not a JSON object");
            var scales = r["scales"]!.AsArray().Select(n => (int)n!).ToArray();
            var size = r["input_size"]!.AsArray().Select(n => (int)n!).ToArray();
            int students = (int)r["students"]!;
            if (scales.Length == 0 || scales.Distinct().Count() != scales.Length) throw new FormatException("scales must be a non-empty list of distinct patch sizes");
            if (size.Length != 2 || size[0] < 1 || size[1] < 1) throw new FormatException("input_size must be [H, W]");
            if (students < 1) throw new FormatException("students must be >= 1");
            var validation = new Dictionary<int, ValidationStats>();
            foreach (int p in scales)
            {
                var v = r["validation"]?[p.ToString()] ?? throw new FormatException($"validation statistics for scale {p} are missing");
                var s = new ValidationStats((double)v["e_mean"]!, (double)v["e_std"]!, (double)v["v_mean"]!, (double)v["v_std"]!);
                if (!(s.EStd > 0) || !(s.VStd > 0)) throw new FormatException($"scale {p}: e_std and v_std must be positive");
                validation[p] = s;
            }
            return new UninformedStudentsConfig(scales, (int)r["in_channels"]!, size[0], size[1], students, validation,
                Normalization(r["image_score"]), Normalization(r["pixel_score"]), (int?)r["normal_class"]);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException or ArgumentException)
        {
            throw new SafetensorsException(path, null, $"__metadata__ 'config' is not a valid uninformed_students config: {e.Message}");
        }
    }

    /// <summary>{min, max, threshold} with numbers, or null while unfitted.</summary>
    private static MinMaxNormalization? Normalization(JsonNode? node)
    {
        if (node is null || node["threshold"] is null || node["min"] is null || node["max"] is null) return null;
        return new MinMaxNormalization((float)node["threshold"]!, (float)node["min"]!, (float)node["max"]!);
    }
}
