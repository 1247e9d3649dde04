using GpuAnomaly.Cli;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Tests.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`gpuanomaly run` on the models exported from PyTorch (Fixtures/onnx_models): the .npy it writes is PyTorch's output.</summary>
public sealed class OnnxModelRunCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-onnx-models-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void RunAndCompare(string model, string device, params string[] outputs)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(["run", OnnxModelFixtures.PathOf(model, ".onnx"), "--input", "input=" + OnnxModelFixtures.PathOf(model, ".input.npy"),
            "--out", _dir, "--device", device], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        foreach (var name in outputs)
        {
            var expected = NpyFile.Read(OnnxModelFixtures.PathOf(model, $".{name}.npy"));
            Assert.Contains($"{name}: FLOAT [{string.Join(", ", expected.Dims)}]", stdout.ToString());
            var actual = NpyFile.Read(Path.Combine(_dir, name + ".npy"));
            Assert.Equal(OnnxDataType.Float, actual.Type);
            Assert.Equal(expected.Dims, actual.Dims);
            KernelLab.AssertClose(actual.Floats(), expected.Data, OnnxModelTests.Tolerance, $"{model} {name}.npy");
        }
    }

    [Fact]
    public void Run_TransformerBlock_WritesPyTorchsOutput() => RunAndCompare("transformer_block", "cpu", "y");

    [Fact]
    public void Run_BankDistance_OnTheKnnOp_WritesPyTorchsOutput() => RunAndCompare("knn_distance", "cpu", "score");

    /// <summary>Anomalib's output names from a PatchCore-style export (needs Resize: branch ops).</summary>
    [Fact]
    public void Run_PatchCore_WritesAnomalyMapAndPredScore() => RunAndCompare("patchcore_tiny", "cpu", "anomaly_map", "pred_score");
}
