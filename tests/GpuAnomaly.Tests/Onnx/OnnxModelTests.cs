using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// Whole models exported by torch.onnx.export (tools/export/onnx_models_fixtures.py), imported and run on each device
/// against the outputs PyTorch computed: relative L2 at most 1e-5 (issue 13 item 6).
///
/// What each needs beyond the ops every device has (conv, pools, linear, layer norm, relu, gelu, same-shape add):
/// transformer_block: MatMul, Transpose, Softmax, Slice, broadcasting Add / Mul / Div (ilgpu-cpu: the generic ops'
/// ILGPU kernels); patchcore_*: Resize (linear), Pad, Transpose, Concat, MatMul, ReduceSum / ReduceMin / ReduceMax
/// (ilgpu-cpu: their kernels); resnet18 / wide_resnet50_2: GlobalAveragePool (ilgpu-cpu: the Reduce kernel).
/// </summary>
public sealed class OnnxModelTests(ITestOutputHelper log)
{
    public const double Tolerance = 1e-5;

    private static readonly Dictionary<string, string[]> Outputs = new()
    {
        ["transformer_block"] = ["y"],
        ["knn_distance"] = ["score"],
        ["knn_distance_clamp_first"] = ["score"],
        ["knn_distance_unclamped"] = ["score"],
        ["patchcore_tiny"] = ["anomaly_map", "pred_score"],
        ["resnet18"] = ["logits"],
        ["wide_resnet50_2"] = ["logits"],
        ["patchcore_resnet18"] = ["anomaly_map", "pred_score"],
    };

    /// <summary>Runs <paramref name="model"/> on its fixture input and checks every output; returns the seconds the run took.</summary>
    public static double MatchPyTorch(string model, string deviceName, out string report)
    {
        var x = NpyFile.Read(OnnxModelFixtures.PathOf(model, ".input.npy"));
        var onnx = OnnxModel.Load(OnnxModelFixtures.PathOf(model, ".onnx"));
        using var device = Device.Open(deviceName);
        var clock = Stopwatch.StartNew();
        var results = OnnxInference.Run(onnx, new Dictionary<string, HostTensor> { ["input"] = x }, device);
        double seconds = clock.Elapsed.TotalSeconds;
        var lines = new List<string>();
        foreach (var name in Outputs[model])
        {
            var expected = NpyFile.Read(OnnxModelFixtures.PathOf(model, $".{name}.npy"));
            var actual = results[name];
            Assert.Equal(expected.Dims, actual.Dims);
            var y = actual.Floats();
            double err = KernelLab.RelL2(y, expected.Data);
            lines.Add($"{model} {name} [{string.Join(", ", expected.Dims)}] on {deviceName}: rel L2 {err:0.00e+0}");
            KernelLab.AssertClose(y, expected.Data, Tolerance, $"{model}.{name} on {deviceName}");
        }
        report = string.Join("\n", lines) + $"\n{model} on {deviceName}: import + run {seconds:0.00} s";
        return seconds;
    }

    /// <summary>The committed models (Fixtures/onnx_models).</summary>
    [Theory]
    [InlineData("transformer_block", "cpu")]
    [InlineData("transformer_block", "ilgpu-cpu")]
    [InlineData("patchcore_tiny", "cpu")]
    [InlineData("patchcore_tiny", "ilgpu-cpu")]
    public void SmallModels_MatchPyTorch(string model, string device)
    {
        MatchPyTorch(model, device, out var report);
        log.WriteLine(report);
    }

    /// <summary>torchvision models with random weights and batch-norm statistics, generated at test time.</summary>
    [TorchModelTheory]
    [InlineData("resnet18")]
    [InlineData("wide_resnet50_2")]
    [InlineData("patchcore_resnet18")]
    public void TorchvisionModels_MatchPyTorch_OnCpu(string model)
    {
        MatchPyTorch(model, "cpu", out var report);
        log.WriteLine(report);
    }

    /// <summary>
    /// The same on the emulated GPU threads of ilgpu-cpu: minutes each (the convolutions' implicit-GEMM kernels use
    /// shared memory and barriers, which the CPU accelerator emulates thread by thread), so only on request
    /// (GPUANOMALY_SLOW_TESTS=1). Measured (2-core machine): resnet18 batch 2 265 s, patchcore_resnet18 68 s,
    /// wide_resnet50_2 27 minutes (docs/ONNX.md).
    /// </summary>
    [SlowTorchModelTheory]
    [InlineData("resnet18")]
    [InlineData("wide_resnet50_2")]
    [InlineData("patchcore_resnet18")]
    public void TorchvisionModels_MatchPyTorch_OnIlgpuCpu(string model)
    {
        MatchPyTorch(model, "ilgpu-cpu", out var report);
        log.WriteLine(report);
    }
}
