using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.Config;

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
            var r = ConfigJson.ParseObject(json);
            var scales = ConfigJson.Ints(ConfigJson.Array(r, "scales"), "scales");
            var size = ConfigJson.Ints(ConfigJson.Array(r, "input_size"), "input_size");
            int students = ConfigJson.Int(r, "students");
            if (scales.Length == 0 || scales.Distinct().Count() != scales.Length) throw new FormatException("scales must be a non-empty list of distinct patch sizes");
            int channels = ConfigJson.Int(r, "in_channels");
            if (size.Length != 2 || size[0] < 1 || size[1] < 1 || size[0] > 8192 || size[1] > 8192) throw new FormatException("input_size must be [H, W], each 1..8192");
            if (channels is not (1 or 3)) throw new FormatException($"in_channels {channels}: expected 1 or 3");
            if (students < 1 || students > 64) throw new FormatException($"students {students}: expected 1..64");
            var validation = new Dictionary<int, ValidationStats>();
            var stats = ConfigJson.OptionalObject(r, "validation");
            foreach (int p in scales)
            {
                var v = ConfigJson.Object(stats?[p.ToString(System.Globalization.CultureInfo.InvariantCulture)]
                    ?? throw new FormatException($"validation statistics for scale {p} are missing"), $"validation[{p}]");
                var s = new ValidationStats(Mean(v, "e_mean", p), Std(v, "e_std", p), Mean(v, "v_mean", p), Std(v, "v_std", p));
                validation[p] = s;
            }
            return new UninformedStudentsConfig(scales, channels, size[0], size[1], students, validation,
                MinMaxNormalization.FromJson(r["image_score"], "image_score"), MinMaxNormalization.FromJson(r["pixel_score"], "pixel_score"), ConfigJson.OptionalInt(r, "normal_class"));
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new SafetensorsException(path, null, $"__metadata__ 'config' is not a valid uninformed_students config: {e.Message}");
        }
    }

    /// <summary>The scoring kernel computes in float32: a mean must be a finite float32.</summary>
    private static double Mean(JsonObject v, string name, int scale)
    {
        double x = ConfigJson.Number(v, name);
        return float.IsFinite((float)x) ? x : throw new FormatException($"scale {scale}: {name} {x} is not a finite float32 number");
    }

    /// <summary>
    /// A standard deviation divides float32 errors: below 1e-20 or above 1e20 the normalized score overflows or
    /// loses every digit (and 1e39 is infinity in float32), so such statistics are refused here, naming them.
    /// </summary>
    private static double Std(JsonObject v, string name, int scale)
    {
        double x = ConfigJson.Number(v, name);
        return x is >= 1e-20 and <= 1e20 ? x : throw new FormatException($"scale {scale}: {name} {x}: expected a number in [1e-20, 1e20]");
    }
}
