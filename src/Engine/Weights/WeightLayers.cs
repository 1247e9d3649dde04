using System.Text.Json;
using GpuAnomaly.Kernels.Ternary;

namespace GpuAnomaly.Engine.Weights;

/// <summary>
/// Adds a file's layers to a graph, float or ternary as the file stores them, so model code never
/// branches on quantization: a layer whose `{name}.weight` is a packed ternary ("T2") tensor becomes
/// a ternary op with its `{name}.weight_scale` ([1] or [rows]); any other weight a float op. The
/// activation mode of each ternary weight is in `__metadata__["ternary"]`, a JSON object
/// {"<weight name>": {"activations": "a32" | "a8", "scale": "tensor" | "row"}} written by
/// `gpuanomaly quantize` (docs/FORMATS.md); a weight missing from it runs A32.
/// </summary>
public sealed class WeightLayers
{
    public const string MetadataKey = "ternary";
    public const string ScaleSuffix = "_scale";

    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, TernaryActivations> _activations = new(StringComparer.Ordinal);

    public WeightLayers(SafetensorsFile file)
    {
        _file = file ?? throw new ArgumentNullException(nameof(file));
        if (!file.Metadata.TryGetValue(MetadataKey, out var json)) return;
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new FormatException("not a JSON object");
            foreach (var layer in doc.RootElement.EnumerateObject())
            {
                string mode = layer.Value.ValueKind == JsonValueKind.Object && layer.Value.TryGetProperty("activations", out var a)
                    && a.ValueKind == JsonValueKind.String ? a.GetString()! : "a32";
                _activations[layer.Name] = ParseActivations(mode) ?? throw new FormatException($"'{layer.Name}': activations '{mode}' is not a32 or a8");
            }
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new SafetensorsException(file.Path, null, $"__metadata__ '{MetadataKey}' is invalid: {e.Message}");
        }
    }

    public SafetensorsFile File => _file;

    public static TernaryActivations? ParseActivations(string s) => s switch
    {
        "a32" => TernaryActivations.A32,
        "a8" => TernaryActivations.A8,
        _ => null,
    };

    public static string Name(TernaryActivations a) => a == TernaryActivations.A8 ? "a8" : "a32";

    /// <summary>Whether `{name}.weight` is stored ternary.</summary>
    public bool IsTernary(string name) => _file.TryGetEntry($"{name}.weight", out var e) && e.DTypeTag == SafetensorsDTypes.Ternary;

    /// <summary>The shape of `{name}.weight` (float or ternary).</summary>
    public Shape WeightShape(string name) => new([.. _file[$"{name}.weight"].Shape]);

    /// <summary>nn.Conv2d `{name}` (weight, optional bias) applied to x.</summary>
    public Value Conv2d(GraphBuilder g, Value x, string name, Conv2dOptions options)
    {
        var bias = _file.Contains($"{name}.bias") ? FloatConstant(g, $"{name}.bias") : null;
        if (!IsTernary(name))
            return g.Conv2d(x, FloatConstant(g, $"{name}.weight"), bias, options, name);
        var (w, scale) = TernaryConstants(g, name);
        var op = new TernaryConv2dOp(options, ActivationsOf($"{name}.weight"));
        return bias is null ? g.Apply(name, op, x, w, scale) : g.Apply(name, op, x, w, scale, bias);
    }

    /// <summary>nn.Linear `{name}` applied to x [..., in_features], then the epilogue (fused for float weights).</summary>
    public Value Linear(GraphBuilder g, Value x, string name, Kernels.Transformer.Epilogue act = Kernels.Transformer.Epilogue.None)
    {
        var bias = _file.Contains($"{name}.bias") ? FloatConstant(g, $"{name}.bias") : null;
        if (!IsTernary(name))
        {
            var wf = FloatConstant(g, $"{name}.weight");
            var lop = new LinearOp(act);
            return bias is null ? g.Apply(name, lop, x, wf) : g.Apply(name, lop, x, wf, bias);
        }
        var (w, scale) = TernaryConstants(g, name);
        var op = new TernaryLinearOp(ActivationsOf($"{name}.weight"));
        var y = bias is null ? g.Apply(name, op, x, w, scale) : g.Apply(name, op, x, w, scale, bias);
        return act == Kernels.Transformer.Epilogue.Gelu ? g.Apply($"{name}.gelu", new GeluOp(), y) : y;
    }

    /// <summary>A float tensor of the file as a graph constant (norm affines, bias tables).</summary>
    public Value Constant(GraphBuilder g, string tensor) => FloatConstant(g, tensor);

    public bool Contains(string tensor) => _file.Contains(tensor);

    public TernaryActivations ActivationsOf(string weightName) =>
        _activations.TryGetValue(weightName, out var a) ? a : TernaryActivations.A32;

    private Value FloatConstant(GraphBuilder g, string tensor)
    {
        var (data, shape) = _file.ReadWeight(tensor);
        return g.Constant(tensor, data, shape);
    }

    private (Value Weight, Value Scale) TernaryConstants(GraphBuilder g, string name)
    {
        string weight = $"{name}.weight", scaleName = weight + ScaleSuffix;
        var (packed, shape) = _file.ReadTernary(weight);
        if (!_file.Contains(scaleName))
            throw new SafetensorsException(_file.Path, weight, $"is ternary but the file has no scale tensor '{scaleName}'");
        var (scale, scaleShape) = _file.ReadWeight(scaleName);
        if (scaleShape.Rank != 1 || (scaleShape[0] != 1 && scaleShape[0] != shape[0]))
            throw new SafetensorsException(_file.Path, scaleName, $"shape {scaleShape} is neither [1] nor [{shape[0]}] (the rows of {weight})");
        foreach (float s in scale)
            if (!float.IsFinite(s)) throw new SafetensorsException(_file.Path, scaleName, $"holds {s}; scales must be finite");
        return (g.TernaryConstant(weight, packed, shape), g.Constant(scaleName, scale, scaleShape));
    }
}
