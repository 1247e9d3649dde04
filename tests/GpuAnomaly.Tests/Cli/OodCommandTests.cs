using System.Text.Json;
using GpuAnomaly.Cli;
using GpuAnomaly.Models.Ood;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`gpuanomaly ood` / `eval-ood` / `fit-ood` on the bundled fitted 8-class model and the bundled sample images.</summary>
public sealed class OodCommandTests : IDisposable
{
    private static readonly string Fitted = Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist8_ood.safetensors");
    private static readonly string Samples = Path.Combine(AppContext.BaseDirectory, "samples");
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-oodcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Ood_PrintsEveryScorePerImage_AndSkipsBadFiles()
    {
        var images = Directory.GetFiles(Samples, "*.png").Order(StringComparer.Ordinal).Take(5).ToList();
        string bad = Path.Combine(_dir, "broken.png");
        File.WriteAllText(bad, "not a png");
        var (code, output, err) = Run(["ood", "--model", Fitted, "--device", "cpu", .. images, bad]);
        Assert.Equal(2, code); // the undecodable file is reported, the others scored
        Assert.Contains("broken.png", err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            foreach (string name in OodScores.Names)
                Assert.True(double.IsFinite(doc.RootElement.GetProperty(name).GetDouble()), $"{name} in {line}");
            Assert.Contains(doc.RootElement.GetProperty("predicted_class").GetInt32(), new[] { 0, 1, 2, 3, 4, 5, 7, 8 });
        }
    }

    [Fact]
    public void Ood_UnfittedModel_ExitsTwoWithAHint()
    {
        string model = Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist.safetensors");
        var (code, _, err) = Run("ood", "--model", model, "--device", "cpu", Samples);
        Assert.Equal(2, code);
        Assert.Contains("fit-ood", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void FitOod_FolderNotAClassId_ExitsTwo()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "data", "sneakers"));
        File.Copy(Directory.GetFiles(Samples, "*.png")[0], Path.Combine(_dir, "data", "sneakers", "a.png"));
        var (code, _, err) = Run("fit-ood", "--data", Path.Combine(_dir, "data"), "--out", Path.Combine(_dir, "out.safetensors"), "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("class ids", err);
        Assert.False(File.Exists(Path.Combine(_dir, "out.safetensors")));
    }
}
