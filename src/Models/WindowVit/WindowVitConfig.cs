using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Config;

namespace GpuAnomaly.Models.WindowVit;

/// <summary>One block's attention grouping: Swin windows (optionally shifted) or SparseViT sparse groups.</summary>
public sealed record WindowVitBlock(string Kind, int WindowSize, int Shift, int Sparsity)
{
    public bool IsWindow => Kind == "window";
    public override string ToString() => IsWindow ? $"window(ws={WindowSize}, shift={Shift})" : $"sparse(S={Sparsity})";
}

/// <summary>The `config` of a `window_vit` file (docs/FORMATS.md, written by tools/export/train_window_vit.py).</summary>
public sealed record WindowVitConfig(int InChannels, int Height, int Width, int PatchSize, int EmbedDim, int Heads, int MlpRatio,
    IReadOnlyList<WindowVitBlock> Blocks, int NumClasses, IReadOnlyList<int> Classes, float Mean, float Std, float LayerNormEps)
{
    public const string Architecture = "window_vit";

    public int TokensH => Height / PatchSize;
    public int TokensW => Width / PatchSize;

    public static WindowVitConfig Parse(string path, IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("architecture", out var arch) || arch != Architecture)
            throw new SafetensorsException(path, null, $"__metadata__ 'architecture' is '{arch ?? "(missing)"}', expected '{Architecture}'");
        if (!meta.TryGetValue("config", out var json)) throw new SafetensorsException(path, null, "__metadata__ has no 'config'");
        try
        {
            var r = ConfigJson.ParseObject(json);
            var size = ConfigJson.Ints(ConfigJson.Array(r, "image_size"), "image_size");
            if (size.Length != 2) throw new FormatException($"image_size has {size.Length} values: expected [H, W]");
            var blocks = ConfigJson.Array(r, "blocks").Select((node, i) =>
            {
                var b = ConfigJson.Object(node, $"blocks[{i}]");
                string kind = ConfigJson.String(b, "kind");
                return kind switch
                {
                    "window" => new WindowVitBlock(kind, ConfigJson.Int(b, "window_size"), ConfigJson.OptionalInt(b, "shift") ?? 0, 0),
                    "sparse" => new WindowVitBlock(kind, 0, 0, ConfigJson.Int(b, "sparsity")),
                    _ => throw new FormatException($"block kind '{kind}' is not window or sparse"),
                };
            }).ToArray();
            var classes = ConfigJson.OptionalArray(r, "classes");
            var c = new WindowVitConfig(ConfigJson.Int(r, "in_channels"), size[0], size[1], ConfigJson.Int(r, "patch_size"), ConfigJson.Int(r, "embed_dim"),
                ConfigJson.Int(r, "heads"), ConfigJson.Int(r, "mlp_ratio"), blocks, ConfigJson.Int(r, "num_classes"),
                classes is null ? [] : ConfigJson.Ints(classes, "classes"), (float)ConfigJson.Number(r, "mean"), (float)ConfigJson.Number(r, "std"),
                (float?)ConfigJson.OptionalNumber(r, "layer_norm_eps") ?? 1e-5f);
            if (c.InChannels is not (1 or 3)) throw new FormatException($"in_channels {c.InChannels}: expected 1 or 3");
            if (size.Length != 2 || size[0] < 1 || size[1] < 1 || size[0] > 8192 || size[1] > 8192) throw new FormatException("image_size must be [H, W], each 1..8192");
            if (c.EmbedDim < 1 || c.MlpRatio < 1 || c.NumClasses < 1) throw new FormatException($"embed_dim {c.EmbedDim}, mlp_ratio {c.MlpRatio} and num_classes {c.NumClasses} must be >= 1");
            if (blocks.Any(b => b.Kind == "window" ? b.WindowSize < 1 || b.Shift < 0 : b.Sparsity < 1)) throw new FormatException("window_size and sparsity must be >= 1, shift >= 0");
            if (!float.IsFinite(c.Mean) || !float.IsFinite(c.Std) || !(c.LayerNormEps > 0) || !float.IsFinite(c.LayerNormEps))
                throw new FormatException($"mean {c.Mean}, std {c.Std} and layer_norm_eps {c.LayerNormEps} must be finite (std and eps positive)");
            if (size.Length != 2 || c.PatchSize < 1 || c.Height % c.PatchSize != 0 || c.Width % c.PatchSize != 0)
                throw new FormatException($"image_size {string.Join("x", size)} is not a multiple of patch_size {c.PatchSize}");
            if (c.Heads < 1 || c.EmbedDim % c.Heads != 0) throw new FormatException($"embed_dim {c.EmbedDim} is not a multiple of heads {c.Heads}");
            if (!(c.Std > 0)) throw new FormatException("std must be positive");
            if (blocks.Length == 0) throw new FormatException("no blocks");
            return c;
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new SafetensorsException(path, null, $"__metadata__ 'config' is not a valid window_vit config: {e.Message}");
        }
    }
}
