using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Ternary;
using Xunit;

namespace GpuAnomaly.Tests.Weights;

/// <summary>Packed ternary ("T2") tensors in safetensors: round trip, device upload, and corrupt codes named by tensor.</summary>
public sealed class TernarySafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-t2-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static sbyte[] RandomTernary(Random rng, int n)
    {
        var v = new sbyte[n];
        for (int i = 0; i < n; i++) v[i] = (sbyte)(rng.Next(3) - 1);
        return v;
    }

    private string Write(string name, uint[] packed, int[] shape)
    {
        var bytes = new byte[packed.Length * 4];
        Buffer.BlockCopy(packed, 0, bytes, 0, bytes.Length);
        string path = Path.Combine(_dir, name);
        SafetensorsWriter.Write(path, [new SafetensorsTensor("layer.weight", SafetensorsDTypes.Ternary, shape, bytes),
            new SafetensorsTensor("layer.weight_scale", [1], new float[] { 0.5f })]);
        return path;
    }

    [Fact]
    public void RoundTrip_ReadAndLoad()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (int[] shape in new[] { new[] { 5, 3, 3, 3 }, [7, 16], [1, 1], [4, 33] })
        {
            int rows = shape[0], k = shape.Skip(1).Aggregate(1, (a, d) => a * d);
            var values = RandomTernary(rng, rows * k);
            var packed = TernaryPacking.Pack(values, rows, k);
            string path = Write($"rt{rows}x{k}.safetensors", packed, shape);
            using var file = SafetensorsFile.Open(path);
            Assert.Equal(rows * k, file["layer.weight"].Elements);
            var (read, readShape) = file.ReadTernary("layer.weight");
            Assert.Equal(packed, read);
            Assert.Equal(new Shape(shape), readShape);
            Assert.Equal(values, TernaryPacking.Unpack(read, rows, k));
            using var dev = new CpuDevice();
            using var t = file.Load("layer.weight", dev);
            Assert.Equal(DType.Ternary2, t.DType);
            Assert.Equal(TernaryPacking.Bytes(rows, k), t.ByteLength);
            var back = new byte[t.ByteLength];
            dev.CopyToHost(t, back);
            Assert.True(back.AsSpan().SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(packed.AsSpan())), $"seed {seed}");
        }
    }

    /// <summary>docs/FORMATS.md's worked example, word for word.</summary>
    [Fact]
    public void FormatsDocExample()
    {
        sbyte[] w = [1, 0, -1, -1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1];
        Assert.Equal([0x1555A506u, 0x55555556u, 0x55555555u, 0x55555551u], TernaryPacking.Pack(w, 2, 18));
    }

    [Fact]
    public void CorruptCodes_AreNamed()
    {
        var rng = KernelLab.NewRng(out int seed);
        var packed = TernaryPacking.Pack(RandomTernary(rng, 3 * 20), 3, 20);
        var bad = (uint[])packed.Clone();
        bad[2] |= 3u << 10; // row 1, word 0, column 5 -> code 3
        using (var file = SafetensorsFile.Open(Write("code3.safetensors", bad, [3, 20])))
        {
            var e = Assert.Throws<SafetensorsException>(() => file.ReadTernary("layer.weight"));
            Assert.Contains("layer.weight", e.Message);
            Assert.Contains("invalid code 3 at row 1, column 5", e.Message);
            using var dev = new CpuDevice();
            Assert.Throws<SafetensorsException>(() => file.Load("layer.weight", dev));
        }
        bad = (uint[])packed.Clone();
        bad[5] &= ~(3u << 30); // row 2's last word: column 31 is padding (K = 20) and now holds code 0
        using (var file = SafetensorsFile.Open(Write("pad.safetensors", bad, [3, 20])))
        {
            var e = Assert.Throws<SafetensorsException>(() => file.ReadTernary("layer.weight"));
            Assert.Contains("row 2: padding after column 19", e.Message);
        }
        using (var file = SafetensorsFile.Open(Write("ok.safetensors", packed, [3, 20])))
            Assert.Contains("not a packed ternary", Assert.Throws<SafetensorsException>(() => file.ReadTernary("layer.weight_scale")).Message);
    }
}
