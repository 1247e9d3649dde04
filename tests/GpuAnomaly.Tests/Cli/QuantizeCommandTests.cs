using GpuAnomaly.Cli;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.StudentTeacher;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`gpuanomaly quantize`: a smaller file the models load, a report, and clean errors.</summary>
public sealed class QuantizeCommandTests : IDisposable
{
    private static readonly string FloatModel = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors");
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Quantize_WritesASmallerFileThatTheModelLoads()
    {
        string outPath = Path.Combine(_dir, "q.safetensors");
        var (code, output, err) = Run("quantize", FloatModel, outPath, "--layers", @"^students\.", "--scale", "row", "--activations", "a8",
            "--json", Path.Combine(_dir, "report.json"));
        Assert.True(code == 0, err);
        Assert.Contains("students.0.p17.layers.1.weight", output);
        Assert.Contains("39 layers", output); // 3 students x (4 + 4 + 5 convs at p = 17, 33, 65)
        Assert.True(new FileInfo(outPath).Length < new FileInfo(FloatModel).Length * 0.6, "the quantized file is not smaller");
        Assert.True(File.Exists(Path.Combine(_dir, "report.json")));
        using (var f = SafetensorsFile.Open(outPath))
        {
            Assert.Equal("T2", f["students.1.p33.layers.2.weight"].DTypeTag);
            Assert.Equal("F32", f["teacher.p33.layers.2.weight"].DTypeTag);
            Assert.Equal([f["students.1.p33.layers.2.weight"].Shape[0]], f["students.1.p33.layers.2.weight_scale"].Shape);
        }
        using var device = new CpuDevice();
        using var model = StudentTeacherModel.Load(outPath, device, 1);
        Assert.Contains(model.Plan.Graph.Nodes, n => n.Op is TernaryConv2dOp);
        var rng = KernelLab.NewRng(out _);
        var scores = model.Run(KernelLab.RandomFloats(rng, 28 * 28).Select(v => (v + 1) / 2).ToArray()).ImageScores;
        Assert.True(float.IsFinite(scores[0]));
    }

    [Theory]
    [InlineData("--layers", "(", "not a valid regular expression")]
    [InlineData("--layers", "^nothing-matches$", "nothing to quantize")]
    public void Quantize_BadSelection_ExitsTwo(string option, string value, string fragment)
    {
        string outPath = Path.Combine(_dir, "bad.safetensors");
        var (code, _, err) = Run("quantize", FloatModel, outPath, option, value);
        Assert.Equal(2, code);
        Assert.Contains(fragment, err);
        Assert.DoesNotContain("   at ", err);
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void Quantize_IntoItsInput_ExitsTwo()
    {
        string copy = Path.Combine(_dir, "m.safetensors");
        File.Copy(FloatModel, copy);
        var (code, _, err) = Run("quantize", copy, copy);
        Assert.Equal(2, code);
        Assert.Contains("not the input", err);
        Assert.Equal(File.ReadAllBytes(FloatModel), File.ReadAllBytes(copy));
    }
}
