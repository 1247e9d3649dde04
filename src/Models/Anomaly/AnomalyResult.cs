namespace GpuAnomaly.Models.Anomaly;

/// <summary>An axis-aligned box around one connected region of the predicted mask (inclusive pixel bounds).</summary>
public sealed record AnomalyBox(int X0, int Y0, int X1, int Y1, float Score);

/// <summary>
/// What Anomalib's inferencer returns for one image: normalized score and label, the normalized anomaly
/// map, the predicted mask and boxes around its connected regions, plus the raw score for diagnostics.
/// </summary>
public sealed record AnomalyResult(
    float PredScore,
    bool PredLabel,
    float RawScore,
    int Width,
    int Height,
    float[] AnomalyMap,
    bool[] PredMask,
    IReadOnlyList<AnomalyBox> Boxes);
