using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GpuAnomaly.Kernels.Ternary;

namespace GpuAnomaly.Engine.Weights;

/// <summary>One quantized (or skipped) weight of <see cref="TernaryFileQuantizer"/>.</summary>
public sealed record TernaryLayerReport(string Name, string Shape, string DTypeBefore, long BytesBefore, long BytesAfter,
    double RelativeError, string Scale, string Activations);

/// <summary>What <see cref="TernaryFileQuantizer.Quantize"/> did: per layer and in total (every tensor of the file).</summary>
public sealed record TernaryQuantizeReport(IReadOnlyList<TernaryLayerReport> Layers, long FileBytesBefore, long FileBytesAfter, int TensorsCopied);

/// <summary>
/// `gpuanomaly quantize`: turns the selected Linear ([out, in]) and Conv2d ([out, in/groups, kh, kw]) weights of a
/// safetensors file into packed ternary weights (BitNet b1.58 absmean, <see cref="TernaryQuantizer"/>):
/// `{name}` becomes a "T2" tensor of the same shape, `{name}_scale` its gamma ([1] or [rows], F32), and
/// `__metadata__["ternary"]` records each layer's activation mode and scale kind (<see cref="WeightLayers"/>).
/// Every other tensor and metadata entry is copied byte for byte; the output is written atomically.
/// </summary>
public static class TernaryFileQuantizer
{
    /// <summary>Weights a layer regex selects by default: every `*.weight` of rank 2 or 4.</summary>
    public const string DefaultLayers = @"\.weight$";

    public static TernaryQuantizeReport Quantize(string input, string output, string? layers = null,
        TernaryScale scale = TernaryScale.Tensor, TernaryActivations activations = TernaryActivations.A32)
    {
        Regex select;
        try { select = new Regex(layers ?? DefaultLayers, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException e) { throw new GpuAnomalyException($"--layers: '{layers}' is not a valid regular expression: {e.Message}"); }
        if (Path.GetFullPath(input) == Path.GetFullPath(output))
            throw new GpuAnomalyException($"{output}: the output must be a new file, not the input");

        using var src = SafetensorsFile.Open(input);
        var meta = src.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        var ternaryMeta = meta.TryGetValue(WeightLayers.MetadataKey, out var existing)
            ? ParseObject(src.Path, existing) : new JsonObject();
        var tensors = new List<SafetensorsTensor>();
        var report = new List<TernaryLayerReport>();
        int copied = 0;
        long before = 0, after = 0;
        foreach (var e in src.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            before += e.ByteLength;
            bool quantize = IsQuantizable(e) && select.IsMatch(e.Name) && !src.Contains(e.Name + WeightLayers.ScaleSuffix);
            if (!quantize)
            {
                tensors.Add(new SafetensorsTensor(e.Name, e.DTypeTag, [.. e.Shape], src.ReadBytes(e.Name)));
                after += e.ByteLength;
                copied++;
                continue;
            }
            var w = src.ReadFloat32(e.Name);
            int rows = e.Shape[0], k = (int)(e.Elements / rows);
            foreach (float v in w)
                if (!float.IsFinite(v)) throw new SafetensorsException(src.Path, e.Name, $"holds {v}; only finite weights can be quantized");
            var t = TernaryQuantizer.Quantize(w, rows, k, scale);
            var packed = t.Pack();
            var bytes = new byte[packed.Length * sizeof(uint)];
            Buffer.BlockCopy(packed, 0, bytes, 0, bytes.Length);
            string scaleName = e.Name + WeightLayers.ScaleSuffix;
            tensors.Add(new SafetensorsTensor(e.Name, SafetensorsDTypes.Ternary, [.. e.Shape], bytes));
            tensors.Add(new SafetensorsTensor(scaleName, [t.Scales.Length], t.Scales));
            long size = bytes.Length + t.Scales.Length * sizeof(float);
            after += size;
            string act = WeightLayers.Name(activations), sc = scale == TernaryScale.Row ? "row" : "tensor";
            ternaryMeta[e.Name] = new JsonObject { ["activations"] = act, ["scale"] = sc };
            report.Add(new TernaryLayerReport(e.Name, "[" + string.Join(", ", e.Shape) + "]", e.DTypeTag, e.ByteLength, size,
                TernaryQuantizer.RelativeError(w, t), sc, act));
        }
        if (report.Count == 0)
            throw new GpuAnomalyException($"{src.Path}: no float weight of rank 2 or 4 matches --layers '{select}' (nothing to quantize)");
        meta[WeightLayers.MetadataKey] = ternaryMeta.ToJsonString();
        SafetensorsWriter.Write(output, tensors, meta);
        return new TernaryQuantizeReport(report, before, after, copied);
    }

    /// <summary>A float `*.weight` of a Linear (rank 2) or Conv2d (rank 4) layer with at least one element.</summary>
    public static bool IsQuantizable(SafetensorsEntry e) =>
        SafetensorsDTypes.IsFloat(e.DTypeTag) && e.Name.EndsWith(".weight", StringComparison.Ordinal)
        && e.Shape.Count is 2 or 4 && e.Elements > 0 && e.Elements / e.Shape[0] <= int.MaxValue;

    private static JsonObject ParseObject(string path, string json)
    {
        try { return JsonNode.Parse(json) as JsonObject ?? throw new FormatException("not a JSON object"); }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException)
        {
            throw new SafetensorsException(path, null, $"__metadata__ '{WeightLayers.MetadataKey}' is invalid: {e.Message}");
        }
    }
}
