using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.Config;

namespace GpuAnomaly.Models.MemoryBank;

/// <summary>
/// One source of patch features. <c>pixels</c>: the image blurred by a Gaussian of <see cref="Blur"/> px and cut
/// into <see cref="Patch"/> x <see cref="Patch"/> patches every <see cref="Stride"/> px (one Conv2d with analytic
/// weights; nothing stored). <c>teacher</c>: the dense descriptors of an Uninformed Students teacher at patch size
/// <see cref="Scale"/> (its weights stored in the model file as <c>teacher.p{Scale}.*</c>), averaged over
/// <see cref="Stride"/> x <see cref="Stride"/> cells.
/// </summary>
public sealed record FeatureSource(string Kind, int Patch, int Stride, double Blur, int Scale)
{
    public const string Pixels = "pixels", Teacher = "teacher";

    /// <summary>"pixels:PATCH/STRIDE[/BLUR]" or "teacher:SCALE[/STRIDE]" (the CLI's --features items).</summary>
    public static FeatureSource ParseSpec(string spec)
    {
        var parts = spec.Split(':', 2);
        var nums = parts.Length == 2 ? parts[1].Split('/') : [];
        try
        {
            switch (parts[0])
            {
                case Pixels when nums.Length is 2 or 3:
                    return Check(new FeatureSource(Pixels, Int(nums[0]), Int(nums[1]), nums.Length == 3 ? double.Parse(nums[2], CultureInfo.InvariantCulture) : 1.0, 0));
                case Teacher when nums.Length is 1 or 2:
                    return Check(new FeatureSource(Teacher, 0, nums.Length == 2 ? Int(nums[1]) : 1, 0, Int(nums[0])));
            }
        }
        catch (FormatException) { }
        throw new FormatException($"feature source '{spec}': expected pixels:PATCH/STRIDE[/BLUR] (e.g. pixels:20/8/1) or teacher:SCALE[/STRIDE] (e.g. teacher:17/4)");

        static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);
    }

    public static FeatureSource Check(FeatureSource s)
    {
        if (s.Kind == Pixels && (s.Patch < 1 || s.Stride < 1 || !(s.Blur >= 0) || s.Blur > 16))
            throw new FormatException($"pixels source: patch {s.Patch} and stride {s.Stride} must be positive, blur {s.Blur} in [0, 16]");
        if (s.Kind == Teacher && (s.Scale < 1 || s.Stride < 1))
            throw new FormatException($"teacher source: scale {s.Scale} and stride {s.Stride} must be positive");
        if (s.Kind is not (Pixels or Teacher)) throw new FormatException($"unknown feature source kind '{s.Kind}' (pixels, teacher)");
        return s;
    }

    public override string ToString() => Kind == Pixels
        ? string.Create(CultureInfo.InvariantCulture, $"pixels:{Patch}/{Stride}/{Blur}")
        : $"teacher:{Scale}/{Stride}";

    public JsonObject ToJson() => Kind == Pixels
        ? new() { ["kind"] = Kind, ["patch"] = Patch, ["stride"] = Stride, ["blur"] = Blur }
        : new() { ["kind"] = Kind, ["scale"] = Scale, ["stride"] = Stride };

    public static FeatureSource FromJson(JsonNode? node)
    {
        var n = ConfigJson.Object(node, "feature source");
        string kind = ConfigJson.String(n, "kind");
        return Check(kind == Pixels
            ? new FeatureSource(kind, ConfigJson.Int(n, "patch"), ConfigJson.Int(n, "stride"), ConfigJson.Number(n, "blur"), 0)
            : new FeatureSource(kind, 0, ConfigJson.Int(n, "stride"), 0, ConfigJson.Int(n, "scale")));
    }
}

/// <summary>How the image score is taken from the patch scores.</summary>
public enum ImageAggregation
{
    /// <summary>PatchCore: the largest patch score, reweighted by the density of the bank around its neighbour.</summary>
    MaxReweighted,
    /// <summary>The largest patch score as it is.</summary>
    Max,
    /// <summary>The mean patch score (aligned images, where every position counts).</summary>
    Mean,
}

/// <summary>
/// The `config` of a `memory_bank` model file (docs/FORMATS.md): input, feature sources, the PatchCore options, the
/// coreset that built the bank and, once fitted, the score normalizations. The bank itself is the file's
/// <c>bank</c> tensor [N, D]; <c>bank_neighbors</c> [N, b] (I32) holds each row's b nearest rows for the reweighting.
/// </summary>
public sealed record MemoryBankConfig(
    int InChannels,
    int Height,
    int Width,
    IReadOnlyList<FeatureSource> Features,
    bool LocallyAware,
    double PositionWeight,
    ImageAggregation Aggregation,
    int ReweightNeighbors,
    double MapSigma,
    JsonObject? Coreset,
    MinMaxNormalization? ImageScore,
    MinMaxNormalization? PixelScore,
    int? NormalClass,
    string? FittedOn)
{
    public const string Architecture = "memory_bank";

    public static string AggregationName(ImageAggregation a) => a switch
    {
        ImageAggregation.MaxReweighted => "max_reweighted",
        ImageAggregation.Max => "max",
        _ => "mean",
    };

    public static ImageAggregation ParseAggregation(string s) => s switch
    {
        "max_reweighted" => ImageAggregation.MaxReweighted,
        "max" => ImageAggregation.Max,
        "mean" => ImageAggregation.Mean,
        _ => throw new FormatException($"image_score_from '{s}': expected max_reweighted, max or mean"),
    };

    public string ToJsonString() => ToJson().ToJsonString();

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["in_channels"] = InChannels,
            ["input_size"] = new JsonArray(Height, Width),
            ["features"] = new JsonArray([.. Features.Select(f => (JsonNode)f.ToJson())]),
            ["locally_aware"] = LocallyAware,
            ["position_weight"] = PositionWeight,
            ["image_score_from"] = AggregationName(Aggregation),
            ["reweight_neighbors"] = ReweightNeighbors,
            ["map_sigma"] = MapSigma,
            ["coreset"] = Coreset?.DeepClone(),
        };
        if (ImageScore is { } i) o["image_score"] = Json(i);
        if (PixelScore is { } p) o["pixel_score"] = Json(p);
        if (NormalClass is { } c) o["normal_class"] = c;
        if (FittedOn is { } f) o["fitted_on"] = f;
        return o;

        static JsonObject Json(MinMaxNormalization n) => new() { ["min"] = n.Min, ["max"] = n.Max, ["threshold"] = n.Threshold };
    }

    public static MemoryBankConfig Parse(string path, IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("architecture", out var arch) || arch != Architecture)
            throw new SafetensorsException(path, null, $"__metadata__ 'architecture' is '{arch ?? "(missing)"}', expected '{Architecture}'");
        if (!meta.TryGetValue("config", out var json)) throw new SafetensorsException(path, null, "__metadata__ has no 'config'");
        try
        {
            var r = ConfigJson.ParseObject(json);
            var size = ConfigJson.Ints(ConfigJson.Array(r, "input_size"), "input_size");
            int channels = ConfigJson.Int(r, "in_channels");
            if (size.Length != 2 || size[0] < 1 || size[1] < 1 || size[0] > 8192 || size[1] > 8192) throw new FormatException("input_size must be [H, W], each 1..8192");
            if (channels is not (1 or 3)) throw new FormatException($"in_channels {channels}: expected 1 or 3");
            var features = ConfigJson.Array(r, "features").Select(FeatureSource.FromJson).ToArray();
            if (features.Length == 0) throw new FormatException("features must list at least one source");
            int b = ConfigJson.OptionalInt(r, "reweight_neighbors") ?? 9;
            double sigma = ConfigJson.OptionalNumber(r, "map_sigma") ?? 4.0, pos = ConfigJson.OptionalNumber(r, "position_weight") ?? 0;
            if (b < 1 || b > Kernels.Knn.KnnParams.MaxK) throw new FormatException($"reweight_neighbors {b}: expected 1..{Kernels.Knn.KnnParams.MaxK}");
            if (!(sigma >= 0) || sigma > 64) throw new FormatException($"map_sigma {sigma}: expected 0..64");
            if (!(pos >= 0) || !double.IsFinite(pos)) throw new FormatException($"position_weight {pos}: expected a finite number >= 0");
            return new MemoryBankConfig(channels, size[0], size[1], features, ConfigJson.OptionalBool(r, "locally_aware") ?? true, pos,
                ParseAggregation(ConfigJson.OptionalString(r, "image_score_from") ?? "max_reweighted"), b, sigma, ConfigJson.OptionalObject(r, "coreset"),
                MinMaxNormalization.FromJson(r["image_score"], "image_score"), MinMaxNormalization.FromJson(r["pixel_score"], "pixel_score"),
                ConfigJson.OptionalInt(r, "normal_class"), ConfigJson.OptionalString(r, "fitted_on"));
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new SafetensorsException(path, null, $"__metadata__ 'config' is not a valid memory_bank config: {e.Message}");
        }
    }
}
