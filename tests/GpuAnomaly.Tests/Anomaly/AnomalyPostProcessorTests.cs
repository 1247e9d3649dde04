using GpuAnomaly.Models.Anomaly;
using Xunit;

namespace GpuAnomaly.Tests.Anomaly;

public class AnomalyPostProcessorTests
{
    [Fact]
    public void Normalize_IsAnomalibsFormula()
    {
        var n = new MinMaxNormalization(Threshold: 3f, Min: 1f, Max: 5f);
        Assert.Equal(0.5f, n.Normalize(3f));                 // the threshold maps to 0.5
        Assert.Equal(0.75f, n.Normalize(4f));                // (4 - 3) / 4 + 0.5
        Assert.Equal(0f, n.Normalize(-10f));                 // clamped
        Assert.Equal(1f, n.Normalize(100f));
        Assert.True(float.IsNaN(n.Normalize(float.NaN)));    // NaN stays visible
        var flat = new MinMaxNormalization(2f, 2f, 2f);     // degenerate validation set
        Assert.Equal(1f, flat.Normalize(2.1f));
        Assert.Equal(0f, flat.Normalize(1.9f));
    }

    [Fact]
    public void Fit_UsesF1ThresholdWithAnomaliesAndMaxOfNormalsWithout()
    {
        float[] scores = [0.1f, 0.2f, 0.3f, 0.8f, 0.9f];
        var withAnomalies = MinMaxNormalization.Fit(scores, [false, false, false, true, true]);
        Assert.Equal(0.8f, withAnomalies.Threshold);         // F1 = 1 from 0.8 on; the lowest such threshold
        Assert.Equal(0.1f, withAnomalies.Min);
        Assert.Equal(0.9f, withAnomalies.Max);
        var normalOnly = MinMaxNormalization.Fit(scores, new bool[5]);
        Assert.Equal(0.9f, normalOnly.Threshold);
        Assert.Throws<ArgumentException>(() => MinMaxNormalization.Fit([1f, float.NaN], [false, true]));
        Assert.Throws<ArgumentException>(() => MinMaxNormalization.Fit([], []));
    }

    [Fact]
    public void Process_GivesScoreLabelMaskAndBoxes()
    {
        // 6x4 map: two separate hot regions (one diagonal pair, joined by 8-connectivity) on a cold background.
        const int w = 6, h = 4;
        var raw = new float[w * h];
        Array.Fill(raw, 1f);
        raw[0 * w + 1] = 9f; raw[1 * w + 2] = 7f;           // region 1: (1,0)-(2,1), diagonal neighbours
        raw[3 * w + 5] = 8f;                                // region 2: (5,3)
        var post = new AnomalyPostProcessor(new MinMaxNormalization(2f, 0f, 4f), new MinMaxNormalization(5f, 1f, 9f));
        var r = post.Process(raw, w, h, rawScore: 3f);

        Assert.Equal(0.75f, r.PredScore);
        Assert.True(r.PredLabel);
        Assert.Equal(3f, r.RawScore);
        Assert.Equal(0.5f + (9f - 5f) / 8f, r.AnomalyMap[1]);
        Assert.Equal(3, r.PredMask.Count(m => m));
        Assert.Equal(2, r.Boxes.Count);
        Assert.Equal(new AnomalyBox(1, 0, 2, 1, 1f), r.Boxes[0]);
        Assert.Equal(new AnomalyBox(5, 3, 5, 3, 0.875f), r.Boxes[1]);

        var normal = post.Process(new float[w * h], w, h, rawScore: 1f);
        Assert.False(normal.PredLabel);
        Assert.Empty(normal.Boxes);
        Assert.Throws<ArgumentException>(() => post.Process(new float[5], w, h, 1f));
    }

    [Fact]
    public void HeatMap_JetEndsAndOverlay()
    {
        Assert.Equal((0, 0, 128), ToInts(HeatMap.Jet(0f)));   // dark blue
        Assert.Equal((128, 0, 0), ToInts(HeatMap.Jet(1f)));   // dark red
        Assert.Equal((128, 255, 128), ToInts(HeatMap.Jet(0.5f)));
        var rgb = HeatMap.Overlay([0f, 1f], [100, 200], 2, 1, channels: 1, alpha: 0.5f);
        Assert.Equal(new byte[] { 50, 50, 114, 164, 100, 100 }, rgb);
        Assert.Throws<ArgumentException>(() => HeatMap.Overlay([0f], [1, 2], 1, 1, channels: 1));
    }

    private static (int, int, int) ToInts((byte R, byte G, byte B) c) => (c.R, c.G, c.B);
}
