using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Models;
using GpuAnomaly.Models.StudentTeacher;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The importer on models exported by PyTorch / built with onnx's API (tools/export/onnx_import_fixtures.py), against
/// the outputs PyTorch computed for the same inputs.
/// </summary>
public sealed class OnnxImporterTests
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx_import", name);

    private static float[] RunModel(string model, string output, Device device, out Shape shape)
    {
        var x = NpyFile.Read(PathOf(model + ".x.npy"));
        var results = OnnxInference.Run(OnnxModel.Load(PathOf(model + ".onnx")), new Dictionary<string, HostTensor> { ["x"] = x }, device);
        shape = results[output].Shape;
        return results[output].Floats();
    }

    [Theory]
    [InlineData("cnn", "probs", "cpu")]
    [InlineData("cnn", "pooled", "cpu")]
    [InlineData("block", "y", "cpu")]
    [InlineData("cnn", "probs", "ilgpu-cpu")]
    [InlineData("cnn", "pooled", "ilgpu-cpu")]
    [InlineData("block", "y", "ilgpu-cpu")]
    public void TorchExports_MatchPyTorch(string model, string output, string deviceName)
    {
        using var device = Device.Open(deviceName);
        var actual = RunModel(model, output, device, out var shape);
        var expected = NpyFile.Read(PathOf($"{model}.{output}.npy"));
        Assert.Equal(expected.Shape, shape);
        KernelLab.AssertClose(actual, expected.Data, 1e-5, $"{model}.{output}");
    }

    [Fact]
    public void Cnn_FusesBatchNormAndActivationsIntoTheConvs()
    {
        var imported = OnnxImporter.Import(OnnxModel.Load(PathOf("cnn.onnx")), new OnnxImportOptions { BatchSize = 3 });
        var graph = imported.Graph!;
        var convs = graph.Nodes.Where(n => n.Op is Conv2dOp).Select(n => ((Conv2dOp)n.Op).Options).ToArray();
        Assert.Equal(2, convs.Length);
        Assert.Equal(Kernels.Activation.Relu, convs[0].Act);
        Assert.Equal(Kernels.Activation.LeakyRelu, convs[1].Act);
        Assert.Equal(0.1f, convs[1].Slope, 6);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is BroadcastBinaryOp or ReluOp or LeakyReluOp);
        Assert.Contains(graph.Nodes, n => n.Op is LinearOp);
        // The batch choice makes every shape static: 3 images in, 3 rows out.
        Assert.Equal(new Shape(3, 3, 12, 10), graph.Inputs.Single().Shape);
        Assert.Equal(new Shape(3, 5), imported.Outputs.Single(o => o.Name == "probs").Shape);
    }

    [Fact]
    public void Block_RecognisesTheErfGelu_AndMapsConstantMatMulsOntoLinear()
    {
        var graph = OnnxImporter.Import(OnnxModel.Load(PathOf("block.onnx")), new OnnxImportOptions { BatchSize = 2 }).Graph!;
        Assert.Single(graph.Nodes, n => n.Op is GeluOp);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is UnaryMathOp { Function: UnaryKind.Erf });
        Assert.Equal(4, graph.Nodes.Count(n => n.Op is LinearOp));
        Assert.Equal(2, graph.Nodes.Count(n => n.Op is MatMulOp));
    }

    [Fact]
    public void IntInput_IsBoundAtLoad_AndIntOutputFoldsExactly()
    {
        var model = OnnxModel.Load(PathOf("int_input.onnx"));
        var x = new HostTensor(OnnxDataType.Float, [2, 5], [1, 2, 3, 4, 5, -1, -2, -3, -4, -5]);
        var idx = HostTensor.Vector(OnnxDataType.Int64, [4, -5, 2]);
        using var device = new CpuDevice();
        var results = OnnxInference.Run(model, new Dictionary<string, HostTensor> { ["x"] = x, ["idx"] = idx }, device);
        var n = results["n"];
        Assert.Equal(OnnxDataType.Int64, n.Type);
        Assert.Equal([6.0], n.Data);
        var y = results["y"];
        double[] g = [5, 1, 3, -5, -1, -3];
        KernelLab.AssertClose(y.Floats(), g.Select(v => Math.Exp(v) - v).ToArray(), 1e-6, "exp(x[:, idx]) - x[:, idx]");

        // Without the int64 input bound, the importer names it.
        var e = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(model));
        Assert.Contains("input 'idx' is INT64: bind it at load time", e.Message);
    }

    [Fact]
    public void UnsupportedOps_AreListedAllAtOnceWithCounts()
    {
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxImporter.Import(OnnxModel.Load(PathOf("unsupported.onnx"))));
        Assert.Equal([new OnnxOpCount("LpNormalization", 2), new OnnxOpCount("ReverseSequence", 1)], e.Ops.OrderByDescending(o => o.Count));
        Assert.Contains("unsupported ONNX ops: ", e.Message);
        Assert.IsAssignableFrom<GpuAnomalyException>(e);
    }

    /// <summary>A generic op past its kernel's limits (a transpose over 7 axes of size > 1) names the op and the device.</summary>
    [Fact]
    public void GenericOps_OnIlgpuDevices_NameTheOpAndDevice()
    {
        using var device = Device.Open("ilgpu-cpu");
        var shape = new Shape(2, 2, 2, 2, 2, 2, 2);
        using var x = device.FromHost(new float[shape.Elements], shape);
        using var y = device.Allocate(shape);
        var e = Assert.Throws<OpNotOnDeviceException>(() => new TransposeOp([1, 0, 2, 3, 4, 5, 6]).Run(device, [x], y));
        Assert.Equal("ilgpu-cpu", e.Device);
        Assert.Matches(@"^op \w+", e.Message);
        Assert.Contains("has no kernel on device ilgpu-cpu", e.Message);
    }

    /// <summary>The bundled Uninformed Students model exported by tools/export/export_onnx.py, against the native graph.</summary>
    [OnnxModelsFact]
    public void BundledStudents_MatchTheNativeGraph()
    {
        string onnx = Path.Combine(OnnxModelsFactAttribute.Dir, "us_default_b1.onnx");
        var rng = KernelLab.NewRng(out int seed);
        var image = KernelLab.RandomFloats(rng, 28 * 28).Select(v => (v + 1) / 2).ToArray();
        using var device = new CpuDevice();
        using var native = StudentTeacherModel.Load(BundledModels.Resolve(BundledModels.UninformedStudentsDefault), device, batch: 1);
        var expected = native.Run(image);
        var results = OnnxInference.Run(OnnxModel.Load(onnx),
            new Dictionary<string, HostTensor> { ["image"] = new(OnnxDataType.Float, [1, 1, 28, 28], image.Select(v => (double)v).ToArray()) }, device);
        foreach (var (p, map) in expected.ScaleMaps)
            KernelLab.AssertClose(results[StudentTeacherModel.ScaleOutput(p)].Floats(), map.Select(v => (double)v).ToArray(), 1e-5, $"p{p} (seed {seed})");
    }

    /// <summary>The bundled window ViT (shifted-window masks built with ScatterND, folded at import) against the native graph.</summary>
    [OnnxModelsFact]
    public void BundledWindowVit_MatchesTheNativeGraph()
    {
        string onnx = Path.Combine(OnnxModelsFactAttribute.Dir, "window_vit_b1.onnx");
        var rng = KernelLab.NewRng(out int seed);
        var image = KernelLab.RandomFloats(rng, 28 * 28).Select(v => (v + 1) / 2).ToArray();
        using var device = new CpuDevice();
        using var native = GpuAnomaly.Models.WindowVit.WindowVitModel.Load(BundledModels.Resolve(BundledModels.WindowVitFashionMnist), device, batch: 1);
        var expected = native.Run(image);
        var results = OnnxInference.Run(OnnxModel.Load(onnx),
            new Dictionary<string, HostTensor> { ["image"] = new(OnnxDataType.Float, [1, 1, 28, 28], image.Select(v => (double)v).ToArray()) }, device);
        KernelLab.AssertClose(results["feature"].Floats(), expected.Features.Select(v => (double)v).ToArray(), 1e-5, $"feature (seed {seed})");
        KernelLab.AssertClose(results["logits"].Floats(), expected.Logits.Select(v => (double)v).ToArray(), 1e-5, $"logits (seed {seed})");
    }
}

/// <summary>A fact that needs the bundled models exported to ONNX (tools/export/export_onnx.py --all DIR; GPUANOMALY_ONNX_MODELS or /tmp/onnx_models).</summary>
public sealed class OnnxModelsFactAttribute : FactAttribute
{
    public static string Dir => Environment.GetEnvironmentVariable("GPUANOMALY_ONNX_MODELS") ?? "/tmp/onnx_models";

    public OnnxModelsFactAttribute()
    {
        if (!File.Exists(Path.Combine(Dir, "us_default_b1.onnx")))
            Skip = $"no {Path.Combine(Dir, "us_default_b1.onnx")} (tools/export/export_onnx.py --all {Dir})";
    }
}
