using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Conv;
using Xunit;

namespace GpuAnomaly.Tests.Engine;

/// <summary>Devices, tensors and their errors: what does not fit, what does not exist, what was disposed.</summary>
public class DeviceTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;
    public DeviceTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    [Fact]
    public void Allocation_TooLarge_NamesSizeAndDevice()
    {
        using var cpu = new CpuDevice();
        foreach (Device d in new Device[] { cpu, _ilgpu })
        {
            var e = Assert.Throws<DeviceOutOfMemoryException>(() => d.Allocate(new Shape(1 << 20, 1 << 20), what: "activations"));
            Assert.Contains(d.Name, e.Message);
            Assert.Contains("4 TiB", e.Message.Replace("4096 GiB", "4 TiB"));
            Assert.Contains("activations", e.Message);
            Assert.Equal(4L << 40, e.Bytes);
        }
    }

    [Fact]
    public void Open_UnknownOrMissingDevice_Throws()
    {
        var e = Assert.Throws<DeviceUnavailableException>(() => Device.Open("tpu"));
        Assert.Contains("tpu", e.Message);
        if (!IlgpuDevice.CudaAvailable())
            Assert.Throws<DeviceUnavailableException>(() => Device.Open("cuda"));
        using var auto = Device.Open("auto");
        Assert.Equal(IlgpuDevice.CudaAvailable() ? "cuda" : "cpu", auto.Name);
    }

    [Fact]
    public void RoundTrip_ThroughEveryDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        var data = KernelLab.RandomFloats(rng, rng.Next(1, 5000));
        using var cpu = new CpuDevice();
        foreach (Device d in new Device[] { cpu, _ilgpu })
        {
            using var t = d.FromHost(data, new Shape(data.Length));
            Assert.True(data.AsSpan().SequenceEqual(t.ToArray()), $"seed {seed} on {d.Name}");
            var half = t.Slice(4 * (data.Length / 2), new Shape(data.Length - data.Length / 2), DType.F32);
            Assert.True(data.AsSpan(data.Length / 2).SequenceEqual(half.ToArray()), $"seed {seed}: slice on {d.Name}");
        }
    }

    [Fact]
    public void Op_RejectsTensorsOfAnotherDeviceOrSize()
    {
        using var cpu = new CpuDevice();
        var p = Conv2dParams.Create(1, 2, 5, 5, 3, 3, 3);
        using var x = cpu.Allocate(new Shape(1, 2, 5, 5));
        using var w = cpu.Allocate(new Shape(3, 2, 3, 3));
        using var b = cpu.Allocate(new Shape(3));
        using var yWrong = cpu.Allocate(new Shape(1, 3, 5, 5));
        using var yOther = _ilgpu.Allocate(new Shape(1, 3, 3, 3));
        Assert.Contains("expected 27", Assert.Throws<ArgumentException>(() => cpu.Conv2d(p, x, w, b, yWrong)).Message);
        Assert.Contains("ilgpu-cpu", Assert.Throws<ArgumentException>(() => cpu.Conv2d(p, x, w, b, yOther)).Message);
    }

    [Fact]
    public void DisposedTensor_CannotBeRead()
    {
        using var cpu = new CpuDevice();
        var t = cpu.FromHost([1f, 2f], new Shape(2));
        var view = t.Reshape(new Shape(1, 2));
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => view.ToArray());
        Assert.Throws<ArgumentException>(() => cpu.Allocate(new Shape(4)).Reshape(new Shape(5)));
    }

    [Fact]
    public void Shape_RejectsNegativeAndHugeDimensions()
    {
        Assert.Throws<ArgumentException>(() => new Shape(2, -1));
        Assert.Throws<ArgumentException>(() => new Shape(1 << 30, 1 << 30, 4));
        Assert.Equal(24, new Shape(2, 3, 4).Elements);
        Assert.Equal(new Shape(2, 3), new Shape(2, 3));
    }
}
