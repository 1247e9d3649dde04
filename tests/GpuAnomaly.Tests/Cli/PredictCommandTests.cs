using System.Text.Json;
using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

public class PredictCommandTests
{
    private static readonly string Model = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors");

    [Fact]
    public void Predict_ScoresGoodImages_SkipsBadOne_WritesHeatMaps()
    {
        string dir = Directory.CreateTempSubdirectory("predict-").FullName;
        try
        {
            var rng = KernelLab.NewRng(out int seed);
            for (int i = 0; i < 3; i++)
            {
                var rgb = new byte[28 * 28 * 3];
                rng.NextBytes(rgb);
                ImageFile.WritePng(Path.Combine(dir, $"img{i}.png"), rgb, 28, 28);
            }
            File.WriteAllText(Path.Combine(dir, "broken.png"), "not an image");
            string outDir = Path.Combine(dir, "out");
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = GpuAnomalyCli.Run(["predict", dir, "--model", Model, "--device", "cpu", "--batch", "2", "--out", outDir], stdout, stderr);

            Assert.True(code == 2, $"seed {seed}: exit {code}\n{stderr}");
            var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, lines.Length);
            foreach (var line in lines)
            {
                using var doc = JsonDocument.Parse(line);
                Assert.True(float.IsFinite(doc.RootElement.GetProperty("raw_score").GetSingle()));
                Assert.True(File.Exists(doc.RootElement.GetProperty("heatmap").GetString()));
            }
            Assert.Contains("broken.png", stderr.ToString());
            Assert.Contains("no fitted score normalization", stderr.ToString());
            Assert.Equal(3, Directory.GetFiles(outDir, "*_heatmap.png").Length);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
