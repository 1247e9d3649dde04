using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.StudentTeacher;
using Xunit;

namespace GpuAnomaly.Tests.StudentTeacher;

/// <summary>
/// The whole Uninformed Students model (3 scales, teacher + 3 students each, fused scoring) against PyTorch's
/// outputs on the fixture written by tools/export/export_students_fixture.py.
/// </summary>
public class StudentTeacherModelTests : IClassFixture<IlgpuCpuFixture>
{
    private static readonly string Model = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors");
    private static readonly string Golden = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_golden.safetensors");
    private readonly IlgpuCpuFixture _ilgpu;

    public StudentTeacherModelTests(IlgpuCpuFixture ilgpu) => _ilgpu = ilgpu;

    [Fact]
    public void Cpu_MatchesPyTorch_OnFashionMnistImages()
    {
        using var device = new CpuDevice();
        CheckParity(device, "");
    }

    /// <summary>The emulator runs every GPU thread one by one: the 7x9 crop keeps it to seconds.</summary>
    [Fact]
    public void IlgpuCpu_MatchesPyTorch_OnSmallCrop() => CheckParity(_ilgpu.Device, "small.");

    private static void CheckParity(Device device, string prefix)
    {
        using var golden = SafetensorsFile.Open(Golden);
        var shape = golden[prefix + "input"].Shape;
        using var model = StudentTeacherModel.Load(Model, device, shape[0], shape[2], shape[3]);
        Assert.Equal([17, 33, 65], model.Config.Scales);
        var output = model.Run(golden.ReadFloat32(prefix + "input"));
        foreach (int p in model.Config.Scales)
            KernelLab.AssertClose(output.ScaleMaps[p], Doubles(golden.ReadFloat32($"{prefix}p{p}.score")), 1e-5, $"{device.Name} p={p} score vs PyTorch");
        KernelLab.AssertClose(output.Map, Doubles(golden.ReadFloat32(prefix + "map")), 1e-5, $"{device.Name} multi-scale map vs PyTorch");
        KernelLab.AssertClose(output.ImageScores, Doubles(golden.ReadFloat32(prefix + "image")), 1e-5, $"{device.Name} image scores vs PyTorch");
    }

    private static double[] Doubles(float[] a) => a.Select(v => (double)v).ToArray();

    [Fact]
    public void Load_RejectsOtherArchitecturesAndMissingTensors()
    {
        using var device = new CpuDevice();
        var e = Assert.Throws<SafetensorsException>(() => StudentTeacherModel.Load(Path.Combine(AppContext.BaseDirectory, "models", "patchnet_demo.safetensors"), device, 1));
        Assert.Contains("uninformed_students", e.Message);

        string path = Path.Combine(Path.GetTempPath(), $"us-missing-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var src = SafetensorsFile.Open(Model))
            {
                var kept = src.Tensors.Where(t => t.Name != "students.2.p33.layers.4.weight")
                    .Select(t => new SafetensorsTensor(t.Name, t.DTypeTag, [.. t.Shape], src.ReadBytes(t.Name))).ToList();
                SafetensorsWriter.Write(path, kept, src.Metadata);
            }
            var missing = Assert.Throws<SafetensorsException>(() => StudentTeacherModel.Load(path, device, 1));
            Assert.Contains("students.2.p33.layers.4.weight", missing.Message);
        }
        finally { File.Delete(path); }
    }
}
