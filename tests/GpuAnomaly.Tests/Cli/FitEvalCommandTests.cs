using System.Text.Json;
using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine.Weights;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>fit -> predict -> eval on a small synthetic MVTec-layout dataset (smooth normals, noisy-patch anomalies, masks).</summary>
public class FitEvalCommandTests
{
    private static readonly string Model = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors");

    [Fact]
    public void Fit_ThenPredictAndEval_ProduceNormalizedScoresAndMetrics()
    {
        string root = Directory.CreateTempSubdirectory("fit-eval-").FullName;
        try
        {
            var rng = KernelLab.NewRng(out int seed);
            void Write(string rel, Func<int, int, byte> pixel)
            {
                string path = Path.Combine(root, rel);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                var rgb = new byte[28 * 28 * 3];
                for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    rgb[(y * 28 + x) * 3] = rgb[(y * 28 + x) * 3 + 1] = rgb[(y * 28 + x) * 3 + 2] = pixel(x, y);
                ImageFile.WritePng(path, rgb, 28, 28);
            }
            byte Smooth(int x, int y) => (byte)(100 + 3 * x + rng.Next(4));
            for (int i = 0; i < 4; i++) Write($"train/good/{i}.png", Smooth);
            for (int i = 0; i < 4; i++) Write($"test/good/{i}.png", Smooth);
            for (int i = 0; i < 4; i++)
            {
                Write($"test/noise/{i}.png", (x, y) => x is >= 8 and < 18 && y is >= 8 and < 18 ? (byte)rng.Next(256) : Smooth(x, y));
                Write($"ground_truth/noise/{i}_mask.png", (x, y) => x is >= 8 and < 18 && y is >= 8 and < 18 ? (byte)255 : (byte)0);
            }
            string fitted = Path.Combine(root, "fitted.safetensors");
            var o = new StringWriter();
            var e = new StringWriter();
            Assert.True(GpuAnomalyCli.Run(["fit", "--data", root, "--model", Model, "--out", fitted, "--device", "cpu"], o, e) == 0, $"seed {seed}: {o}{e}");
            Assert.Contains("F1-adaptive", o.ToString());
            using (var f = SafetensorsFile.Open(fitted))
                Assert.Contains("\"threshold\"", f.Metadata["config"]);

            o = new StringWriter();
            Assert.Equal(0, GpuAnomalyCli.Run(["predict", Path.Combine(root, "test"), "--model", fitted, "--device", "cpu", "--out", Path.Combine(root, "out")], o, e));
            var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(8, lines.Length);
            foreach (var line in lines)
            {
                using var doc = JsonDocument.Parse(line);
                float score = doc.RootElement.GetProperty("pred_score").GetSingle();
                Assert.InRange(score, 0f, 1f);
                Assert.Equal(score > 0.5f ? "anomalous" : "normal", doc.RootElement.GetProperty("pred_label").GetString());
            }

            string json = Path.Combine(root, "metrics.json");
            o = new StringWriter();
            Assert.True(GpuAnomalyCli.Run(["eval", "--data", root, "--model", fitted, "--device", "cpu", "--json", json], o, e) == 0, $"{o}{e}");
            using var metrics = JsonDocument.Parse(File.ReadAllText(json));
            foreach (var key in new[] { "image_auroc", "image_f1", "image_fpr_at_95_tpr", "pixel_auroc", "pixel_aupro_0.3" })
                Assert.InRange(metrics.RootElement.GetProperty(key).GetDouble(), 0.0, 1.0);
            Assert.Equal(8, metrics.RootElement.GetProperty("images").GetInt32());
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void Eval_WithoutAnomalies_ExitsTwo()
    {
        string root = Directory.CreateTempSubdirectory("eval-bad-").FullName;
        try
        {
            string p = Path.Combine(root, "test", "good", "a.png");
            Directory.CreateDirectory(Path.GetDirectoryName(p)!);
            ImageFile.WritePng(p, new byte[28 * 28 * 3], 28, 28);
            var e = new StringWriter();
            Assert.Equal(2, GpuAnomalyCli.Run(["eval", "--data", root, "--model", Model, "--device", "cpu"], new StringWriter(), e));
            Assert.Contains("test/<defect>", e.ToString());
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
