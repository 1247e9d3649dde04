using GpuAnomaly.Cli;
using GpuAnomaly.Tests.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`gpuanomaly inspect` on ONNX files: what it lists, and one line with exit code 2 for every malformed model.</summary>
public sealed class InspectOnnxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-inspect-onnx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void TorchExport_ListsVersionsInputsOutputsInitializersAndOps()
    {
        var (code, output, err) = Run("inspect", OnnxFixtures.PathOf("tiny_cnn.onnx"));
        Assert.True(code == 0, err);
        Assert.Equal("", err);
        Assert.Contains("tiny_cnn.onnx: ONNX model, IR version 7, producer pytorch 1.13.0, opsets ai.onnx 13", output);
        Assert.Contains("graph 'torch_jit': 5 nodes (5 with subgraphs), 4 initializers (235 elements, 940 bytes)", output);
        Assert.Matches(@"image\s*│\s*FLOAT\s*│\s*\[batch, 1, 8, 8\]", output);
        Assert.Matches(@"logits\s*│\s*FLOAT\s*│\s*\[batch, 3\]", output);
        foreach (var op in new[] { "Conv", "Relu", "MaxPool", "Flatten", "Gemm" }) Assert.Matches($@"{op}\s*│\s*1\s", output);
        Assert.Contains("trained_on", output);
    }

    [Fact]
    public void Subgraphs_AndExternalData_AreCounted()
    {
        var (code, output, err) = Run("inspect", OnnxFixtures.PathOf("subgraph.onnx"));
        Assert.True(code == 0, err);
        Assert.Contains("3 nodes (7 with subgraphs), 2 initializers", output);
        Assert.Matches(@"Neg\s*│\s*1\s", output);
        Assert.DoesNotMatch(@"scale\s*│\s*FLOAT", output); // initializers are not listed as inputs

        (code, output, err) = Run("inspect", OnnxFixtures.PathOf("tiny_cnn_external.onnx"));
        Assert.True(code == 0, err);
        Assert.Contains("4 initializers (235 elements, 940 bytes, some in external data)", output);
    }

    [Fact]
    public void LoneTensor_AndDispatchByContent()
    {
        var (code, output, err) = Run("inspect", OnnxFixtures.PathOf("tensor_int64.pb"));
        Assert.True(code == 0, err);
        Assert.Contains("ONNX tensor 'output_0', INT64 [2, 2], 4 elements, 32 bytes (raw)", output);

        // No telling extension: a model is recognised by its first byte, a safetensors file by its header.
        string model = Path.Combine(_dir, "model.bin");
        File.Copy(OnnxFixtures.PathOf("typed.onnx"), model);
        (code, output, err) = Run("inspect", model);
        Assert.True(code == 0, err);
        Assert.Contains("ONNX model, IR version", output);
        string weights = Path.Combine(_dir, "weights.bin");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "vim_fixture.safetensors"), weights);
        (code, output, err) = Run("inspect", weights);
        Assert.True(code == 0, err);
        Assert.Contains("tensors", output);
        Assert.DoesNotContain("ONNX", output);
    }

    [Fact]
    public void EveryMalformedModel_ExitsTwoWithOneLine()
    {
        int n = 0;
        foreach (var (name, bytes, fragment, _) in MalformedOnnx.Cases)
        {
            string path = Path.Combine(_dir, $"case{n++}.onnx");
            File.WriteAllBytes(path, bytes);
            var (code, output, err) = Run("inspect", path);
            Assert.True(code == 2, $"{name}: exit code {code}, stderr: {err}");
            var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, $"{name}: expected one line, got:\n{err}");
            Assert.StartsWith($"error: {path}: ", lines[0]);
            Assert.Contains(fragment, lines[0]);
            Assert.Equal("", output);
        }
        foreach (var file in Directory.GetFiles(Path.Combine(OnnxFixtures.Dir, "malformed"), "*.onnx"))
        {
            var (code, _, err) = Run("inspect", file);
            Assert.True(code == 2, $"{file}: exit code {code}, stderr: {err}");
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    [Fact]
    public void MissingOnnxFile_ExitsTwo()
    {
        var (code, _, err) = Run("inspect", "/nonexistent/model.onnx");
        Assert.Equal(2, code);
        Assert.Equal("error: /nonexistent/model.onnx: no such file", err.Trim());
    }
}
