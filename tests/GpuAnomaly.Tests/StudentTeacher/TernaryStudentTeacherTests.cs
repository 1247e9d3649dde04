using System.Text.Json.Nodes;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Models.StudentTeacher;
using Xunit;

namespace GpuAnomaly.Tests.StudentTeacher;

/// <summary>
/// A model with a mix of float and ternary layers (teacher layers per-tensor A32, student layers per-row A8, first
/// convs float), made by tools/export/export_ternary_fixture.py: our quantizer writes the same file bit for bit, and
/// the engine reproduces PyTorch's maps through the same model code as for float models.
/// </summary>
public class TernaryStudentTeacherTests : IClassFixture<IlgpuCpuFixture>
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
    private static readonly string FloatModel = Path.Combine(Fixtures, "uninformed_students_small.safetensors");
    private static readonly string Model = Path.Combine(Fixtures, "uninformed_students_small_ternary.safetensors");
    private static readonly string Golden = Path.Combine(Fixtures, "uninformed_students_ternary_golden.safetensors");
    private readonly IlgpuCpuFixture _ilgpu;

    public TernaryStudentTeacherTests(IlgpuCpuFixture ilgpu) => _ilgpu = ilgpu;

    [Fact]
    public void Quantizer_WritesWhatPyTorchWrites()
    {
        string dir = Directory.CreateTempSubdirectory("gpuanomaly-quantize-").FullName;
        try
        {
            string pass1 = Path.Combine(dir, "teacher.safetensors"), pass2 = Path.Combine(dir, "both.safetensors");
            var r1 = TernaryFileQuantizer.Quantize(FloatModel, pass1, @"^teacher\..*layers\.[1-9]", TernaryScale.Tensor, TernaryActivations.A32);
            var r2 = TernaryFileQuantizer.Quantize(pass1, pass2, @"^students\..*layers\.[1-9]", TernaryScale.Row, TernaryActivations.A8);
            Assert.Equal(40, r1.Layers.Count + r2.Layers.Count);
            Assert.All(r1.Layers.Concat(r2.Layers), l => Assert.InRange(l.RelativeError, 0.05, 0.9));

            using var ours = SafetensorsFile.Open(pass2);
            using var theirs = SafetensorsFile.Open(Model);
            Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(), ours.Tensors.Select(t => t.Name).Order());
            foreach (var t in theirs.Tensors)
            {
                var o = ours[t.Name];
                Assert.Equal(t.DTypeTag, o.DTypeTag);
                Assert.Equal(t.Shape, o.Shape);
                Assert.True(theirs.ReadBytes(t.Name).AsSpan().SequenceEqual(ours.ReadBytes(t.Name)), $"{t.Name}: bytes differ from tools/export/ternary.py's");
            }
            var a = JsonNode.Parse(theirs.Metadata[WeightLayers.MetadataKey])!.AsObject();
            var b = JsonNode.Parse(ours.Metadata[WeightLayers.MetadataKey])!.AsObject();
            Assert.Equal(a.Count, b.Count);
            foreach (var (name, mode) in a)
                Assert.True(JsonNode.DeepEquals(mode, b[name]), $"{name}: metadata {mode} vs {b[name]}");
            Assert.Equal(theirs.Metadata["config"], ours.Metadata["config"]);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Cpu_MatchesPyTorch() { using var d = new CpuDevice(); CheckParity(d, ""); }

    [Fact]
    public void IlgpuCpu_MatchesPyTorch_OnSmallCrop() => CheckParity(_ilgpu.Device, "small.");

    /// <summary>
    /// A8 layers round activations to int8 from float32 values that PyTorch and the engine sum in different orders, so
    /// an element may round the other way now and then; 1e-4 is far below what a real disagreement would give
    /// (the float and the ternary model's maps differ by a relative L2 of order 1).
    /// </summary>
    private static void CheckParity(Device device, string prefix)
    {
        using var golden = SafetensorsFile.Open(Golden);
        var shape = golden[prefix + "input"].Shape;
        using var model = StudentTeacherModel.Load(Model, device, shape[0], shape[2], shape[3]);
        Assert.Contains(model.Plan.Graph.Nodes, n => n.Op is TernaryConv2dOp { Activations: TernaryActivations.A8 });
        Assert.Contains(model.Plan.Graph.Nodes, n => n.Op is TernaryConv2dOp { Activations: TernaryActivations.A32 });
        Assert.Contains(model.Plan.Graph.Nodes, n => n.Op is Conv2dOp);
        var output = model.Run(golden.ReadFloat32(prefix + "input"));
        foreach (int p in model.Config.Scales)
            KernelLab.AssertClose(output.ScaleMaps[p], Doubles(golden.ReadFloat32($"{prefix}p{p}.score")), 1e-4, $"{device.Name} p={p} ternary score vs PyTorch");
        KernelLab.AssertClose(output.ImageScores, Doubles(golden.ReadFloat32(prefix + "image")), 1e-4, $"{device.Name} ternary image scores vs PyTorch");
    }

    private static double[] Doubles(float[] a) => a.Select(v => (double)v).ToArray();
}
