namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// A supported op (or a model input) used with a mode or type the engine does not implement on purpose: training modes,
/// STRING tensors, optional / sequence values. Distinct from <see cref="OnnxImportException"/> (a bug or a bad model)
/// so that onnx-test reports it as UNSUPPORTED with <see cref="Feature"/> instead of FAIL.
/// </summary>
public sealed class OnnxFeatureException(string file, string? location, string feature)
    : GpuAnomalyException($"{file}: {location ?? "model"}: {feature} is not supported")
{
    /// <summary>What is missing, short: "Dropout(training_mode, ratio 0.75)", "STRING tensors", "optional inputs".</summary>
    public string Feature { get; } = feature;
}
