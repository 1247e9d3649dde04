using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Demo;
using Xunit;

namespace GpuAnomaly.Tests.Models;

/// <summary>The bundled patch networks reproduce PyTorch's dense descriptors (fixture from tools/export/export_demo.py).</summary>
public class PatchNetworkDemoTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuCpuFixture _ilgpu;
    public PatchNetworkDemoTests(IlgpuCpuFixture ilgpu) => _ilgpu = ilgpu;

    [Fact]
    public void Cpu_MatchesPyTorch_OnFashionMnistImages()
    {
        using var device = new CpuDevice();
        CheckParity(device, "");
    }

    /// <summary>The emulator runs every GPU thread one by one: a 6x7 crop keeps it to seconds.</summary>
    [Fact]
    public void IlgpuCpu_MatchesPyTorch_OnSmallCrop() => CheckParity(_ilgpu.Device, "small.");

    private static void CheckParity(Device device, string prefix)
    {
        using var golden = SafetensorsFile.Open(PatchNetworkDemo.BundledGolden);
        var shape = golden[prefix + "input"].Shape;
        using var demo = PatchNetworkDemo.Load(PatchNetworkDemo.BundledModel, device, shape[0], shape[2], shape[3]);
        Assert.Equal([17, 33], demo.Scales);
        var outputs = demo.Run(golden.ReadFloat32(prefix + "input"));
        foreach (int p in demo.Scales)
        {
            var expected = golden.ReadFloat32($"{prefix}p{p}.dense").Select(v => (double)v).ToArray();
            KernelLab.AssertClose(outputs[p], expected, 1e-5, $"{device.Name} p={p} {prefix}dense vs PyTorch");
        }
        // A second run reuses the plan's buffers and gives the same answer.
        var again = demo.Run(golden.ReadFloat32(prefix + "input"));
        Assert.Equal(outputs[17], again[17]);
    }

    [Fact]
    public void Plan_ReusesBuffers()
    {
        using var device = new CpuDevice();
        using var demo = PatchNetworkDemo.Load(PatchNetworkDemo.BundledModel, device, 4);
        Assert.True(demo.Plan.PeakActivationBytes < demo.Plan.NaiveActivationBytes);
    }

    [Fact]
    public void Load_RejectsFileWithoutDemoMetadata()
    {
        string path = Path.Combine(Path.GetTempPath(), $"not-a-demo-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsWriter.Write(path, [("x", new[] { 2 }, new float[] { 1, 2 })]);
            using var device = new CpuDevice();
            var e = Assert.Throws<SafetensorsException>(() => PatchNetworkDemo.Load(path, device, 1));
            Assert.Contains("architecture", e.Message);
        }
        finally { File.Delete(path); }
    }
}
