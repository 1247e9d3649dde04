using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

public class HeatMapPanelTests
{
    private static readonly int PanelWidth28 = 3 * 224 + 2 * HeatMapPanel.Gap + HeatMapPanel.ScaleWidth;

    [Fact]
    public void HeatMapPanel_28x28_IsUpscaled8x_ThreePanelsAndScale()
    {
        var rng = KernelLab.NewRng(out int seed);
        var image = new byte[28 * 28];
        rng.NextBytes(image);
        // Left half low, right half high: the mask is the right half, away from the bilinear blend at the border.
        var map = new float[28 * 28];
        for (int i = 0; i < map.Length; i++) map[i] = i % 28 < 14 ? 0.1f : 0.9f;

        var (rgb, w, h) = HeatMapPanel.Compose(map, image, 28, 28, 1);

        Assert.Equal(8, HeatMapPanel.Scale(28, 28));
        Assert.Equal(224, h);
        Assert.Equal(PanelWidth28, w);
        Assert.Equal(w * h * 3, rgb.Length);
        for (int y = 0; y < h; y += 7)
            for (int x = 0; x < 224; x += 5)
            {
                byte v = image[(y / 8) * 28 + x / 8];
                int i = (y * w + x) * 3;
                Assert.True(rgb[i] == v && rgb[i + 1] == v && rgb[i + 2] == v, $"seed {seed}: input panel ({x},{y}) is not nearest-neighbour");
                int m = (y * w + 2 * (224 + HeatMapPanel.Gap) + x) * 3;
                byte want = x / 8 >= 14 ? (byte)255 : (byte)0;
                if (Math.Abs(x / 8 - 14) >= 1) Assert.True(rgb[m] == want, $"mask ({x},{y}) is {rgb[m]}, expected {want}");
            }
    }

    [Fact]
    public void HeatMapPanel_NonSquare_ShortSideReaches224()
    {
        var (_, w, h) = HeatMapPanel.Compose(new float[30 * 50], new byte[30 * 50 * 3], 50, 30, 3);
        Assert.Equal(8, HeatMapPanel.Scale(50, 30)); // ceil(224 / 30)
        Assert.Equal(240, h);
        Assert.Equal(3 * 400 + 2 * HeatMapPanel.Gap + HeatMapPanel.ScaleWidth, w);
        Assert.Equal(1, HeatMapPanel.Scale(300, 400));
    }

    [Fact]
    public void Predict_WritesHeatMapPanels_AtViewableSize()
    {
        string dir = Directory.CreateTempSubdirectory("panel-").FullName;
        try
        {
            var rgb = new byte[28 * 28 * 3];
            KernelLab.NewRng(out _).NextBytes(rgb);
            ImageFile.WritePng(Path.Combine(dir, "a.png"), rgb, 28, 28);
            string outDir = Path.Combine(dir, "out");
            var stderr = new StringWriter();
            int code = GpuAnomalyCli.Run(["predict", Path.Combine(dir, "a.png"), "--device", "cpu", "--out", outDir], new StringWriter(), stderr);
            Assert.True(code == 0, stderr.ToString());
            var png = ImageFile.Load(Path.Combine(outDir, "a_heatmap.png"), 3);
            Assert.Equal(224, png.Height);
            Assert.Equal(PanelWidth28, png.Width);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
