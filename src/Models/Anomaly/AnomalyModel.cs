using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.MemoryBank;
using GpuAnomaly.Models.StudentTeacher;

namespace GpuAnomaly.Models.Anomaly;

/// <summary>One batch's raw anomaly maps [B, H, W] (image resolution) and raw image scores [B].</summary>
public sealed record AnomalyMaps(float[] Map, float[] ImageScores);

/// <summary>
/// What `predict`, `fit` and `eval` need from a loaded anomaly model, whatever its architecture: the batch shape,
/// the fitted normalizations, and one call from images to raw maps and scores (Anomalib's inferencer shape; the
/// <see cref="AnomalyPostProcessor"/> turns them into score, label, map, mask, boxes).
/// </summary>
public interface IAnomalyModel : IDisposable
{
    /// <summary>[B, C, H, W] of one batch.</summary>
    Shape InputShape { get; }
    Device Device { get; }
    string Architecture { get; }
    MinMaxNormalization? ImageScore { get; }
    MinMaxNormalization? PixelScore { get; }
    /// <summary>Runs a batch [B, C, H, W] of images scaled to [0, 1].</summary>
    AnomalyMaps Score(float[] images);
}

/// <summary>Opens a model file by the architecture its metadata names (an ONNX file by its extension).</summary>
public static class AnomalyModel
{
    public static readonly string[] Architectures = [UninformedStudentsConfig.Architecture, MemoryBankConfig.Architecture];

    public static bool IsOnnx(string path) => path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    public static string ArchitectureOf(string path)
    {
        if (IsOnnx(path)) return OnnxAnomalyModel.ArchitectureName;
        using var file = SafetensorsFile.Open(path);
        return file.Metadata.TryGetValue("architecture", out var a) ? a : "(missing)";
    }

    /// <summary>A safetensors model by its metadata's architecture, or an ONNX file (`.onnx`) with its metadata.json beside it.</summary>
    public static IAnomalyModel Load(string path, Device device, int batch) => ArchitectureOf(path) switch
    {
        OnnxAnomalyModel.ArchitectureName => OnnxAnomalyModel.Load(path, device, batch),
        UninformedStudentsConfig.Architecture => StudentTeacherModel.Load(path, device, batch),
        MemoryBankConfig.Architecture => MemoryBankModel.Load(path, device, batch),
        var other => throw new SafetensorsException(path, null,
            $"__metadata__ 'architecture' is '{other}'; an anomaly model is one of: {string.Join(", ", Architectures)}"),
    };
}
