using System.Runtime.InteropServices;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.PatchNetworks;

namespace GpuAnomaly.Models.MemoryBank;

/// <summary>
/// The feature stage of a memory-bank model: one graph runs every <see cref="FeatureSource"/> on a batch (pixel
/// patches as one Conv2d with analytic blur-and-unfold weights, teacher descriptors as the teacher's dense network),
/// each optionally made locally aware (PatchCore's 3x3 neighbourhood mean, count_include_pad as PyTorch's
/// AvgPool2d(3, 1, 1)); the maps are then resized to the largest grid (bilinear, align_corners=False), concatenated
/// and, when <see cref="MemoryBankConfig.PositionWeight"/> &gt; 0, given two coordinate channels (the cell centre in
/// image pixels times the weight), so that aligned images compare a patch with patches from about the same place.
/// The result is one token [D] per grid cell, [B * T, D].
/// </summary>
public sealed class MemoryBankFeatures : IDisposable
{
    private readonly Executor _executor;
    private readonly (int C, int H, int W)[] _maps;
    // Each map's host copy, reused by every batch (a soak run showed the per-batch copies as most of the garbage).
    private readonly string[] _outputNames;
    private readonly float[][] _hostMaps;
    private readonly ExclusiveRun _exclusive = new(MemoryBankConfig.Architecture + " features");

    public MemoryBankFeatures(MemoryBankConfig config, WeightLayers? teacherWeights, Device device, int batch)
    {
        Config = config;
        if (batch < 1) throw new ArgumentException($"batch {batch} must be positive");
        var g = new GraphBuilder();
        InputShape = new Shape(batch, config.InChannels, config.Height, config.Width);
        var image = g.Input("image", InputShape);
        var maps = new List<(int, int, int)>();
        for (int i = 0; i < config.Features.Count; i++)
        {
            var f = config.Features[i];
            Value v;
            if (f.Kind == FeatureSource.Pixels)
            {
                if (f.Patch > config.Height || f.Patch > config.Width)
                    throw new ArgumentException($"feature source {f}: a {f.Patch}-px patch does not fit the {config.Height}x{config.Width} input");
                var (w, k, r) = BlurUnfoldWeights(f.Patch, f.Blur);
                int c = config.InChannels;
                var weights = new float[c * w.Length];
                for (int ch = 0; ch < c; ch++) w.CopyTo(weights, ch * w.Length);
                v = g.Conv2d(image, g.Constant($"features.{i}.unfold", weights, new Shape(c * f.Patch * f.Patch, 1, k, k)), null,
                    new Conv2dOptions(stride: f.Stride, padding: r, groups: c), $"features.{i}.patches");
            }
            else
            {
                if (teacherWeights is null) throw new ArgumentException($"feature source {f} needs the teacher's weights");
                v = DensePatchNetwork.Build(g, image, f.Scale, $"teacher.p{f.Scale}.", teacherWeights);
                if (f.Stride > 1) v = g.AvgPool2d(v, f.Stride, f.Stride, name: $"features.{i}.cells");
            }
            if (config.LocallyAware) v = g.AvgPool2d(v, 3, 1, 1, countIncludePad: true, name: $"features.{i}.local");
            g.Output($"features.{i}", v);
            maps.Add((v.Shape[1], v.Shape[2], v.Shape[3]));
        }
        _maps = [.. maps];
        GridH = _maps.Max(m => m.H);
        GridW = _maps.Max(m => m.W);
        Dims = _maps.Sum(m => m.C) + (config.PositionWeight > 0 ? 2 : 0);
        _executor = new Executor(g.Build(), device);
        _outputNames = [.. Enumerable.Range(0, _maps.Length).Select(i => $"features.{i}")];
        _hostMaps = [.. _outputNames.Select(name => new float[_executor.Output(name).Elements])];
    }

    public MemoryBankConfig Config { get; }
    public Shape InputShape { get; }
    public Device Device => _executor.Device;
    public int GridH { get; }
    public int GridW { get; }
    /// <summary>Tokens per image.</summary>
    public int Tokens => GridH * GridW;
    /// <summary>Feature size D of one token.</summary>
    public int Dims { get; }

    /// <summary>Tokens [B * T, D] of a batch [B, C, H, W] (row b * T + y * GridW + x).</summary>
    public float[] Extract(float[] images)
    {
        using var run = _exclusive.Enter();
        _executor.SetInput("image", images);
        _executor.Run();
        int b = InputShape[0], t = Tokens, d = Dims;
        var tokens = new float[(long)b * t * d];
        int at = 0;
        var resized = new float[t];
        for (int i = 0; i < _maps.Length; i++)
        {
            var (c, h, w) = _maps[i];
            var map = _hostMaps[i];
            Device.CopyToHost(_executor.Output(_outputNames[i]), MemoryMarshal.AsBytes(map.AsSpan()));
            for (int n = 0; n < b; n++)
                for (int ch = 0; ch < c; ch++)
                {
                    var plane = map.AsSpan((n * c + ch) * h * w, h * w);
                    if (h == GridH && w == GridW) plane.CopyTo(resized);
                    else Bilinear.Resize(plane, h, w, resized, GridH, GridW);
                    for (int j = 0; j < t; j++) tokens[((long)n * t + j) * d + at + ch] = resized[j];
                }
            at += c;
        }
        if (Config.PositionWeight > 0)
        {
            float sy = (float)(Config.PositionWeight * Config.Height / GridH), sx = (float)(Config.PositionWeight * Config.Width / GridW);
            for (int n = 0; n < b; n++)
                for (int y = 0; y < GridH; y++)
                    for (int x = 0; x < GridW; x++)
                    {
                        long row = ((long)n * t + y * GridW + x) * d;
                        tokens[row + at] = (y + 0.5f) * sy;
                        tokens[row + at + 1] = (x + 0.5f) * sx;
                    }
        }
        return tokens;
    }

    /// <summary>
    /// Weights [p*p, k, k] of one channel: output channel (u, v) is the image blurred by a Gaussian of sigma
    /// <paramref name="blur"/> (radius r = ceil(3 sigma), normalized, zero padding) at patch offset (u, v).
    /// </summary>
    public static (float[] Weights, int Kernel, int Radius) BlurUnfoldWeights(int p, double blur)
    {
        int r = blur > 0 ? (int)Math.Ceiling(3 * blur) : 0, k = p + 2 * r;
        var g = new double[2 * r + 1];
        for (int t = -r; t <= r; t++) g[t + r] = blur > 0 ? Math.Exp(-0.5 * t * t / (blur * blur)) : 1;
        double sum = g.Sum();
        for (int t = 0; t < g.Length; t++) g[t] /= sum;
        var w = new float[p * p * k * k];
        for (int u = 0; u < p; u++)
            for (int v = 0; v < p; v++)
                for (int a = 0; a <= 2 * r; a++)
                    for (int bb = 0; bb <= 2 * r; bb++)
                        w[((u * p + v) * k + u + a) * k + v + bb] = (float)(g[a] * g[bb]);
        return (w, k, r);
    }

    public void Dispose() => _executor.Dispose();
}

/// <summary>Bilinear resizing of one plane as PyTorch's F.interpolate(mode="bilinear", align_corners=False).</summary>
public static class Bilinear
{
    public static void Resize(ReadOnlySpan<float> src, int h, int w, Span<float> dst, int outH, int outW)
    {
        float scaleY = (float)h / outH, scaleX = (float)w / outW;
        for (int y = 0; y < outH; y++)
        {
            float fy = Math.Max((y + 0.5f) * scaleY - 0.5f, 0f);
            int y0 = Math.Min((int)fy, h - 1), y1 = Math.Min(y0 + 1, h - 1);
            float ly = fy - y0;
            for (int x = 0; x < outW; x++)
            {
                float fx = Math.Max((x + 0.5f) * scaleX - 0.5f, 0f);
                int x0 = Math.Min((int)fx, w - 1), x1 = Math.Min(x0 + 1, w - 1);
                float lx = fx - x0;
                float top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx;
                float bottom = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx;
                dst[y * outW + x] = top * (1 - ly) + bottom * ly;
            }
        }
    }
}
