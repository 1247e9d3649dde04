using System.Text.Json;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.PatchNetworks;

namespace GpuAnomaly.Models.Demo;

/// <summary>
/// The engine demo that ships with the repository: Uninformed Students patch networks exported
/// from PyTorch (tools/export/export_demo.py), run densely on a batch of images. Outputs one
/// [B, 128, H, W] descriptor map per patch size. Until the anomaly model lands, this is what
/// `gpuanomaly demo` runs, checked against PyTorch's own outputs.
/// </summary>
public sealed class PatchNetworkDemo : IDisposable
{
    private readonly Executor _executor;

    private PatchNetworkDemo(Executor executor, IReadOnlyList<int> scales, Shape input)
    {
        _executor = executor;
        Scales = scales;
        InputShape = input;
    }

    public IReadOnlyList<int> Scales { get; }
    public Shape InputShape { get; }
    public ExecutionPlan Plan => _executor.Plan;
    public Device Device => _executor.Device;

    /// <summary>Where the bundled model and its PyTorch fixture are (copied beside the binaries).</summary>
    public static string BundledDirectory => Path.Combine(AppContext.BaseDirectory, "models");
    public static string BundledModel => Path.Combine(BundledDirectory, "patchnet_demo.safetensors");
    public static string BundledGolden => Path.Combine(BundledDirectory, "patchnet_demo_golden.safetensors");

    public static string OutputName(int p) => $"p{p}.dense";

    /// <summary>
    /// Loads a model file (architecture and config in its `__metadata__`) for batches of
    /// <paramref name="batch"/> images of the model's input size, or of height x width when given
    /// (the networks are fully convolutional: any size works).
    /// </summary>
    public static PatchNetworkDemo Load(string path, Device device, int batch, int? height = null, int? width = null)
    {
        if (batch < 1 || height < 1 || width < 1) throw new ArgumentException($"batch {batch} and image size {height}x{width} must be positive");
        using var file = SafetensorsFile.Open(path);
        var config = DemoConfig.Parse(path, file.Metadata);
        var g = new GraphBuilder();
        var input = new Shape(batch, config.InChannels, height ?? config.Height, width ?? config.Width);
        var image = g.Input("image", input);
        foreach (int p in config.Scales)
            g.Output(OutputName(p), DensePatchNetwork.Build(g, image, p, $"p{p}.", file.ReadWeight));
        var graph = g.Build();
        return new PatchNetworkDemo(new Executor(graph, device), config.Scales, input);
    }

    /// <summary>Runs the batch [B, C, H, W]; returns each scale's descriptors [B, 128, H, W].</summary>
    public Dictionary<int, float[]> Run(float[] images)
    {
        var outputs = _executor.RunToHost(("image", images));
        return Scales.ToDictionary(p => p, p => outputs[OutputName(p)]);
    }

    /// <summary>Runs without downloading (for timing).</summary>
    public void RunOnDevice(float[] images) => _executor.Run(("image", images));

    public void Dispose() => _executor.Dispose();

    private sealed record DemoConfig(int[] Scales, int InChannels, int Height, int Width)
    {
        public static DemoConfig Parse(string path, IReadOnlyDictionary<string, string> meta)
        {
            if (!meta.TryGetValue("architecture", out var arch) || arch != "patch_network_demo")
                throw new SafetensorsException(path, null, $"__metadata__ 'architecture' is '{arch ?? "(missing)"}', expected 'patch_network_demo'");
            if (!meta.TryGetValue("config", out var json))
                throw new SafetensorsException(path, null, "__metadata__ has no 'config'");
            try
            {
                using var doc = JsonDocument.Parse(json);
                var r = doc.RootElement;
                var scales = r.GetProperty("scales").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var size = r.GetProperty("input_size").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                if (scales.Length == 0 || size.Length != 2 || size[0] < 1 || size[1] < 1)
                    throw new FormatException("needs at least one scale and input_size [H, W]");
                return new DemoConfig(scales, r.GetProperty("in_channels").GetInt32(), size[0], size[1]);
            }
            catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
            {
                throw new SafetensorsException(path, null, $"__metadata__ 'config' is not a valid demo config: {e.Message}");
            }
        }
    }
}
