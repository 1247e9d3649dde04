using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;

namespace GpuAnomaly.Models.Anomaly;

/// <summary>
/// An anomaly model exported to ONNX the way Anomalib exports one (docs/ONNX.md, "predict with an ONNX model"): one
/// float input [B, C, H, W] (C 1 or 3, images scaled to [0, 1], then the metadata's mean / std when it has them), and
/// the outputs `anomaly_map` ([B, 1, h, w] or [B, h, w]) and `pred_score` ([B] or [B, 1]). Without `pred_score` the
/// image score is the map's maximum, and a model with a single output takes it as the map (a rank-1 or [B, 1] one as
/// the score: a classification model, its map the score everywhere), as Anomalib's inferencers do. A map of another
/// size than the input is resized bilinearly (half-pixel centres) to it. Normalization and thresholds come from the
/// `metadata.json` beside the model (<see cref="AnomalibMetadata"/>).
/// </summary>
public sealed class OnnxAnomalyModel : IAnomalyModel
{
    public const string ArchitectureName = "onnx";

    private readonly Executor _executor;
    private readonly string _input, _map;
    private readonly string? _score;
    private readonly int _mapH, _mapW;
    private readonly float[]? _mean, _std;

    private OnnxAnomalyModel(Executor executor, Shape input, string inputName, string map, int mapH, int mapW, string? score, AnomalibMetadata meta)
    {
        _executor = executor;
        InputShape = input;
        _input = inputName;
        _map = map;
        _mapH = mapH;
        _mapW = mapW;
        _score = score;
        Metadata = meta;
        _mean = meta.Mean;
        _std = meta.Std;
    }

    public Shape InputShape { get; }
    public Device Device => _executor.Device;
    public string Architecture => ArchitectureName;
    public AnomalibMetadata Metadata { get; }
    public MinMaxNormalization? ImageScore => Metadata.ImageScore;
    public MinMaxNormalization? PixelScore => Metadata.PixelScore;

    /// <summary>Imports <paramref name="path"/> for batches of <paramref name="batch"/> (or the model's fixed batch).</summary>
    public static OnnxAnomalyModel Load(string path, Device device, int batch, string? metadataPath = null)
    {
        var model = OnnxModel.Load(path);
        metadataPath ??= AnomalibMetadata.Beside(path);
        var meta = metadataPath is null ? AnomalibMetadata.Empty(path) : AnomalibMetadata.Load(metadataPath);

        var inputs = model.Graph.RuntimeInputs;
        if (inputs.Count != 1) throw new OnnxAnomalyModelException(path, $"an anomaly model has one image input; this one has {inputs.Count} ({string.Join(", ", inputs.Select(i => i.Name))})");
        var input = inputs[0];
        if (input.ElementType != OnnxDataType.Float) throw new OnnxAnomalyModelException(path, $"input '{input.Name}' is {input.ElementType.ProtoName()}; expected FLOAT images");
        if (input.Shape is not { Count: 4 } dims) throw new OnnxAnomalyModelException(path, $"input '{input.Name}' needs a known rank of 4 ([batch, channels, height, width])");
        int b = dims[0].Value is { } fixedBatch ? checked((int)fixedBatch) : Math.Max(1, batch);
        int c = dims[1].Value is { } ch ? checked((int)ch) : throw new OnnxAnomalyModelException(path, $"input '{input.Name}' has no fixed channel count");
        if (c is not (1 or 3)) throw new OnnxAnomalyModelException(path, $"input '{input.Name}' has {c} channels; images give 1 or 3");
        int h = Spatial(path, input.Name, dims[2].Value, meta.InputSize?[0], "height"), w = Spatial(path, input.Name, dims[3].Value, meta.InputSize?[1], "width");
        if (meta.Mean is { } m && m.Length != 1 && m.Length != c)
            throw new OnnxAnomalyModelException(meta.File, $"'mean' has {m.Length} values for a {c}-channel input");
        var shape = new Shape(b, c, h, w);

        var imported = OnnxImporter.Import(model, new OnnxImportOptions { InputShapes = new Dictionary<string, int[]> { [input.Name] = [b, c, h, w] } });
        var outputs = imported.Outputs;
        var byName = outputs.ToDictionary(o => o.Name);
        var mapOut = byName.GetValueOrDefault("anomaly_map") ?? (outputs.Count == 1 ? outputs[0] : null);
        var scoreOut = byName.GetValueOrDefault("pred_score");
        if (mapOut is null && scoreOut is null)
            throw new OnnxAnomalyModelException(path, $"no output named 'anomaly_map' or 'pred_score' (outputs: {string.Join(", ", outputs.Select(o => o.Name))}); " +
                "an anomaly model follows Anomalib's export names");
        foreach (var o in new[] { mapOut, scoreOut })
            if (o is { Constant: not null }) throw new OnnxAnomalyModelException(path, $"output '{o.Name}' does not depend on the input");
        if (imported.Graph is null) throw new OnnxAnomalyModelException(path, "no output depends on the input");

        int mapH = 1, mapW = 1;
        string? mapName = null;
        if (mapOut is not null)
        {
            var s = mapOut.Shape;
            bool scoreLike = s.Rank == 1 || (s.Rank == 2 && s[1] == 1);
            if (scoreLike && scoreOut is null) scoreOut = mapOut; // a classification model: one score per image
            else
            {
                if (s.Rank is < 3 or > 4 || s[0] != b || (s.Rank == 4 && s[1] != 1))
                    throw new OnnxAnomalyModelException(path, $"output '{mapOut.Name}' is {s}; an anomaly map is [{b}, 1, h, w] or [{b}, h, w]");
                mapName = mapOut.Name;
                mapH = s[s.Rank - 2];
                mapW = s[s.Rank - 1];
            }
        }
        if (scoreOut is not null && scoreOut.Shape.Elements != b)
            throw new OnnxAnomalyModelException(path, $"output '{scoreOut.Name}' is {scoreOut.Shape}; an image score is [{b}] or [{b}, 1]");

        var executor = new Executor(imported.Graph, device);
        return new OnnxAnomalyModel(executor, shape, input.Name, mapName ?? scoreOut!.Name, mapName is null ? 0 : mapH, mapW, scoreOut?.Name, meta);
    }

    private static int Spatial(string path, string input, long? dim, int? fromMetadata, string what)
    {
        if (dim is { } d)
        {
            if (fromMetadata is { } m && m != d) throw new OnnxAnomalyModelException(path, $"input '{input}' {what} is {d}, the metadata's input_size says {m}");
            return checked((int)d);
        }
        return fromMetadata ?? throw new OnnxAnomalyModelException(path, $"input '{input}' has a symbolic {what}: give 'input_size' [height, width] in metadata.json");
    }

    public AnomalyMaps Score(float[] images)
    {
        int b = InputShape[0], c = InputShape[1], h = InputShape[2], w = InputShape[3];
        if (images.Length != InputShape.Elements) throw new ArgumentException($"onnx model: a batch is {InputShape.Elements} values ({InputShape}), got {images.Length}");
        var x = images;
        if (_mean is not null)
        {
            x = new float[images.Length];
            for (int i = 0; i < b * c; i++)
            {
                int ch = i % c;
                float mean = _mean[_mean.Length == 1 ? 0 : ch], inv = 1f / _std![_std.Length == 1 ? 0 : ch];
                for (int j = i * h * w; j < (i + 1) * h * w; j++) x[j] = (images[j] - mean) * inv;
            }
        }
        _executor.SetInput(_input, x);
        _executor.Run();
        var maps = new float[b * h * w];
        var scores = new float[b];
        if (_mapH == 0)
        {
            // A classification model: its score everywhere.
            var s = _executor.Output(_map).ToArray();
            for (int i = 0; i < b; i++) Array.Fill(maps, s[i], i * h * w, h * w);
            return new AnomalyMaps(maps, s);
        }
        var raw = _executor.Output(_map).ToArray();
        for (int i = 0; i < b; i++)
        {
            var src = raw.AsSpan(i * _mapH * _mapW, _mapH * _mapW);
            if (_mapH == h && _mapW == w) src.CopyTo(maps.AsSpan(i * h * w, h * w));
            else MemoryBank.Bilinear.Resize(src, _mapH, _mapW, maps.AsSpan(i * h * w, h * w), h, w);
        }
        if (_score is not null) _executor.Output(_score).ToArray().AsSpan().CopyTo(scores);
        else
            for (int i = 0; i < b; i++)
            {
                // Anomalib: the score of a map-only model is the map's maximum (at its own resolution).
                float max = float.NegativeInfinity;
                foreach (float v in raw.AsSpan(i * _mapH * _mapW, _mapH * _mapW)) max = float.IsNaN(v) ? v : Math.Max(max, v);
                scores[i] = max;
            }
        return new AnomalyMaps(maps, scores);
    }

    public void Dispose() => _executor.Dispose();
}
