using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.WindowVit;
using Xunit;

namespace GpuAnomaly.Tests.WindowVit;

/// <summary>
/// The window-attention classifier against PyTorch (tools/export/export_window_vit_fixture.py): the trained Fashion-MNIST
/// model (14x14 tokens, windows of 7, shifted windows, sparse groups) and a random one whose shapes force every padding
/// path (13x13 tokens, windows of 4 and 5 with shifts, sparse groups of S = 3, 3 heads). Every block's tokens, the pooled
/// feature and the logits must match with relative L2 <= 1e-5.
/// </summary>
public class WindowVitModelTests : IClassFixture<IlgpuCpuFixture>
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
    private readonly IlgpuCpuFixture _ilgpu;

    public WindowVitModelTests(IlgpuCpuFixture ilgpu) => _ilgpu = ilgpu;

    public static string Trained => Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist.safetensors");

    [Fact]
    public void Cpu_Trained_MatchesPyTorch() { using var d = new CpuDevice(); Check(d, Trained, "window_vit_golden.safetensors"); }

    [Fact]
    public void Cpu_Small_MatchesPyTorch() { using var d = new CpuDevice(); Check(d, Path.Combine(Fixtures, "window_vit_small.safetensors"), "window_vit_small_golden.safetensors"); }

    [Fact]
    public void IlgpuCpu_Small_MatchesPyTorch() =>
        Check(_ilgpu.Device, Path.Combine(Fixtures, "window_vit_small.safetensors"), "window_vit_small_golden.safetensors");

    private static void Check(Device device, string model, string goldenName)
    {
        using var golden = SafetensorsFile.Open(Path.Combine(Fixtures, goldenName));
        int batch = golden["input"].Shape[0];
        using var m = WindowVitModel.Load(model, device, batch, intermediates: true);
        var output = m.Run(golden.ReadFloat32("input"));
        string ctx = $"{device.Name} {Path.GetFileName(model)}";
        KernelLab.AssertClose(output.Intermediates["tokens"], Doubles(golden.ReadFloat32("tokens")), 1e-5, $"{ctx} patch embedding");
        for (int i = 0; i < m.Config.Blocks.Count; i++)
            KernelLab.AssertClose(output.Intermediates[$"block{i}"], Doubles(golden.ReadFloat32($"block{i}")), 1e-5, $"{ctx} block {i} ({m.Config.Blocks[i]})");
        KernelLab.AssertClose(output.Features, Doubles(golden.ReadFloat32("feature")), 1e-5, $"{ctx} pooled feature");
        KernelLab.AssertClose(output.Logits, Doubles(golden.ReadFloat32("logits")), 1e-5, $"{ctx} logits");
    }

    [Fact]
    public void Load_RejectsAStudentTeacherFile()
    {
        using var d = new CpuDevice();
        var e = Assert.Throws<SafetensorsException>(() =>
            WindowVitModel.Load(Path.Combine(Fixtures, "uninformed_students_small.safetensors"), d, 1));
        Assert.Contains("window_vit", e.Message);
    }

    private static double[] Doubles(float[] a) => a.Select(v => (double)v).ToArray();
}
