using GpuAnomaly.Models.Metrics;

namespace GpuAnomaly.Models.Anomaly;

/// <summary>
/// Raw model outputs -> <see cref="AnomalyResult"/>: normalize the image score and the map with their
/// fitted statistics, label = normalized score &gt; 0.5, mask = normalized map &gt; 0.5, boxes = the
/// 8-connected regions of the mask, each scored by its highest normalized pixel.
/// </summary>
public sealed class AnomalyPostProcessor(MinMaxNormalization image, MinMaxNormalization pixel)
{
    public MinMaxNormalization Image { get; } = image;
    public MinMaxNormalization Pixel { get; } = pixel;

    public AnomalyResult Process(ReadOnlySpan<float> rawMap, int width, int height, float rawScore)
    {
        if (width < 1 || height < 1 || rawMap.Length != width * height)
            throw new ArgumentException($"post-processing: a {width}x{height} map needs {width * height} values, got {rawMap.Length}");
        var map = new float[rawMap.Length];
        Pixel.Normalize(rawMap, map);
        var mask = new bool[map.Length];
        for (int i = 0; i < map.Length; i++) mask[i] = map[i] > 0.5f;

        var labels = new int[map.Length];
        int regions = ConnectedComponents.Label(mask, width, height, labels);
        var boxes = new AnomalyBox[regions];
        var peak = new float[regions];
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] > 0) peak[labels[i] - 1] = Math.Max(peak[labels[i] - 1], map[i]);
        var bounds = ConnectedComponents.BoundingBoxes(labels, width, height, regions);
        for (int r = 0; r < regions; r++) boxes[r] = new AnomalyBox(bounds[r].X0, bounds[r].Y0, bounds[r].X1, bounds[r].Y1, peak[r]);

        float score = Image.Normalize(rawScore);
        return new AnomalyResult(score, score > 0.5f, rawScore, width, height, map, mask, boxes);
    }
}
