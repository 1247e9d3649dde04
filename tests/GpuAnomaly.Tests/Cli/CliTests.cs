using GpuAnomaly.Cli;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Demo;
using GpuAnomaly.Tests.Weights;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>The `gpuanomaly` tool: exit codes, one-line errors, no stack traces.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Inspect_EveryMalformedFile_ExitsTwoWithOneLine()
    {
        string dir = Directory.CreateTempSubdirectory("gpuanomaly-cli-").FullName;
        try
        {
            int n = 0;
            foreach (var (name, bytes, fragment) in MalformedSafetensors.Cases)
            {
                string path = Path.Combine(dir, $"case{n++}.safetensors");
                File.WriteAllBytes(path, bytes);
                var (code, _, err) = Run("inspect", path);
                Assert.True(code == 2, $"{name}: exit code {code}, stderr: {err}");
                var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(lines.Length == 1, $"{name}: expected one line, got:\n{err}");
                Assert.StartsWith("error: ", lines[0]);
                Assert.Contains(Path.GetFileName(path), lines[0]);
                Assert.Contains(fragment, lines[0]);
                Assert.DoesNotContain("   at ", err);
            }
            Assert.True(n >= 20, $"only {n} malformed cases");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Inspect_ValidFile_ListsTensorsAndMetadata()
    {
        var (code, output, err) = Run("inspect", PatchNetworkDemo.BundledModel);
        Assert.True(code == 0, err);
        Assert.Contains("p17.layers.0.weight", output);
        Assert.Contains("[32, 1, 6, 6]", output);
        Assert.Contains("patch_network_demo", output);
        Assert.Equal("", err);
    }

    [Fact]
    public void Inspect_MissingFile_ExitsTwo()
    {
        var (code, _, err) = Run("inspect", "/nonexistent/model.safetensors");
        Assert.Equal(2, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("no such file", err);
    }

    [Fact]
    public void UnknownCommandAndBadDevice_ExitTwo()
    {
        Assert.Equal(2, Run("frobnicate").Code);
        Assert.Equal(2, Run("demo", "--device", "tpu").Code);
    }

    [Fact]
    public void Info_ListsDevices()
    {
        var (code, output, _) = Run("info");
        Assert.Equal(0, code);
        Assert.Contains("cpu", output);
        Assert.Contains("ilgpu-cpu", output);
        Assert.Contains("ILGPU 1.5.3", output);
    }

    [Fact]
    public void Predict_NoArguments_ScoresTheBundledSamples()
    {
        string outDir = Directory.CreateTempSubdirectory("predict-default-").FullName;
        try
        {
            var (code, output, err) = Run("predict", "--device", "cpu", "--out", outDir);
            Assert.True(code == 0, err);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(100, lines.Length);
            Assert.All(lines, l => Assert.Contains("\"pred_score\"", l));
            Assert.Equal(100, Directory.GetFiles(outDir, "*_heatmap.png").Length);
            // The default model (Trouser as normal) flags most of the other classes' samples and few trousers.
            int flagged = lines.Count(l => l.Contains("/anomalous_") && l.Contains("\"pred_label\":\"anomalous\""));
            int kept = lines.Count(l => l.Contains("/normal_") && l.Contains("\"pred_label\":\"normal\""));
            Assert.True(flagged >= 30 && kept >= 35, $"flagged {flagged}/50 anomalous, kept {kept}/50 normal");
        }
        finally { Directory.Delete(outDir, recursive: true); }
    }

    [Fact]
    public void Demo_OnCpu_MatchesPyTorch()
    {
        var (code, output, err) = Run("demo", "--device", "cpu", "--repeat", "2");
        Assert.True(code == 0, output + err);
        Assert.Contains("reproduces PyTorch", output);
        Assert.Contains("p33.dense", output);
    }

    [Fact]
    public void Demo_MalformedModel_ExitsTwo()
    {
        string path = Path.Combine(Path.GetTempPath(), $"trunc-{Guid.NewGuid():N}.safetensors");
        try
        {
            var bytes = File.ReadAllBytes(PatchNetworkDemo.BundledModel);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var (code, _, err) = Run("demo", "--device", "cpu", "--model", path);
            Assert.Equal(2, code);
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(Path.GetFileName(path), err);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Check_OnCpu_Passes()
    {
        var (code, output, err) = Run("check", "--device", "cpu", "--cases", "4");
        Assert.True(code == 0, output + err);
        Assert.Contains("0 failed", output);
        // Whole words of the table, so that "linear.gemv" is not found inside "linear.gemv.cached".
        var words = System.Text.RegularExpressions.Regex.Matches(output, @"[a-z0-9_.]+").Select(m => m.Value).ToHashSet();
        foreach (var kernel in KernelCheckTests.EveryDevice.Concat(KernelCheckTests.CpuOnly))
            Assert.True(words.Contains(kernel), $"no row for {kernel}:\n{output}");
    }

    [Fact]
    public void Bench_SmallOnCpu_ReportsEveryKernel()
    {
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, err) = Run("bench", "--device", "cpu", "--small", "--json", json);
            Assert.True(code == 0, output + err);
            foreach (var k in new[] { "conv2d", "pool2d", "leaky_relu", "add", "student_teacher_score", "ternary_linear.a32", "ternary_linear.a8",
                     "linear.fp32", "window_attention", "vim_score", "GFLOP/s" })
                Assert.Contains(k, output);
            Assert.Contains("\"MedianMs\"", File.ReadAllText(json));
        }
        finally { File.Delete(json); }
    }

    [Fact]
    public void Bench_WindowVitModel_ReportsImagesPerSecond_AndRefusesSize()
    {
        string model = Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist.safetensors");
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, err) = Run("bench", "--device", "cpu", "--model", model, "--batch", "3", "--repeat", "2", "--json", json);
            Assert.True(code == 0, output + err);
            Assert.Contains("window_vit C ", output);
            Assert.Contains("[3, 1, 28, 28]", output);
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal("window_vit", doc.RootElement.GetProperty("Architecture").GetString());
            Assert.True(doc.RootElement.GetProperty("ImagesPerSecond").GetDouble() > 0);
        }
        finally { File.Delete(json); }

        var (code2, _, err2) = Run("bench", "--device", "cpu", "--model", model, "--size", "32");
        Assert.Equal(2, code2);
        Assert.Contains("--size does not apply", err2);
        Assert.DoesNotContain("   at ", err2);
    }

    [Fact]
    public void Bench_Profile_TimesEveryNode_AndNeedsAModel()
    {
        string model = Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist.safetensors");
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, err) = Run("bench", "--device", "cpu", "--model", model, "--repeat", "2", "--profile", "--json", json);
            Assert.True(code == 0, output + err);
            Assert.Contains("profile: median of 2 runs", output);
            Assert.Contains("window_attention", output);
            Assert.Contains("GFLOP/s", output);
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            var nodes = doc.RootElement.GetProperty("Profile");
            Assert.Equal(37, nodes.GetArrayLength());
            Assert.All(nodes.EnumerateArray(), n => Assert.True(n.GetProperty("MedianMs").GetDouble() >= 0));
        }
        finally { File.Delete(json); }

        var (code2, _, err2) = Run("bench", "--device", "cpu", "--profile");
        Assert.Equal(2, code2);
        Assert.Contains("--profile needs --model", err2);
    }
}
