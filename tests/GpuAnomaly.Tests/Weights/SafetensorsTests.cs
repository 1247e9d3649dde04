using System.Buffers.Binary;
using System.Text;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using Xunit;

namespace GpuAnomaly.Tests.Weights;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private string WriteBytes(string name, byte[] bytes)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static readonly string[] Tags = [.. SafetensorsDTypes.Tags];

    // ---- round trips ----

    [Fact]
    public void RoundTrip_RandomTensorsAndMetadata()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int file = 0; file < 20; file++)
        {
            int count = rng.Next(0, 8);
            var tensors = new List<SafetensorsTensor>();
            var expected = new Dictionary<string, (string Tag, int[] Shape, byte[] Data)>();
            for (int k = 0; k < count; k++)
            {
                string tag = Tags[rng.Next(Tags.Length)];
                int[] shape = RandomShape(rng);
                if (tag == SafetensorsDTypes.Ternary && shape.Length == 0) shape = [3]; // packed ternary needs rows
                var data = new byte[(long)SafetensorsDTypes.StorageBytes(tag, shape)!.Value];
                rng.NextBytes(data);
                string name = $"layer{rng.Next(100)}.{k}.weight";
                tensors.Add(new SafetensorsTensor(name, tag, shape, data));
                expected[name] = (tag, shape, data);
            }
            var metadata = new Dictionary<string, string>
            {
                ["arch"] = "student-teacher",
                ["unicode ключ"] = "värde 值 🙂 \"quoted\" \\ \n newline",
                ["empty"] = "",
                [$"seed"] = seed.ToString(),
            };
            string path = PathOf($"roundtrip{file}.safetensors");
            SafetensorsWriter.Write(path, tensors, metadata);

            using var st = SafetensorsFile.Open(path);
            string context = $"seed {seed}, file {file}";
            Assert.Equal(0, st.DataStart % 8);
            Assert.Equal(metadata, st.Metadata.ToDictionary());
            Assert.Equal(expected.Count, st.Tensors.Count);
            // sorted by name, offsets in that order
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), st.Tensors.Select(t => t.Name));
            foreach (var (name, (tag, shape, data)) in expected)
            {
                var e = st[name];
                Assert.True(e.DTypeTag == tag, context);
                Assert.True(shape.SequenceEqual(e.Shape), context);
                Assert.True(data.AsSpan().SequenceEqual(st.ReadBytes(name)), $"{context}: tensor {name}");
            }
        }
    }

    private static int[] RandomShape(Random rng)
    {
        var shape = new int[rng.Next(0, 5)];
        for (int i = 0; i < shape.Length; i++) shape[i] = rng.Next(0, 6);
        return shape;
    }

    [Fact]
    public void RoundTrip_FloatsScalarEmptyAndLoad()
    {
        var rng = KernelLab.NewRng(out int seed);
        float[] w = KernelLab.RandomFloats(rng, 2 * 3 * 5 * 7);
        float[] scalar = KernelLab.RandomFloats(rng, 1);
        string path = PathOf("floats.safetensors");
        SafetensorsWriter.Write(path, [("conv1.weight", new[] { 2, 3, 5, 7 }, w), ("scale", Array.Empty<int>(), scalar), ("empty", new[] { 4, 0, 3 }, Array.Empty<float>())]);

        using var st = SafetensorsFile.Open(path);
        Assert.Equal(w, st.ReadFloat32("conv1.weight"));
        Assert.Equal(scalar, st.ReadFloat32("scale"));
        Assert.Empty(st["scale"].Shape);
        Assert.Empty(st.ReadFloat32("empty"));
        Assert.Equal(DType.F32, st["conv1.weight"].DType);
        Assert.Empty(st.Metadata);

        using var device = new CpuDevice();
        using var t = st.Load("conv1.weight", device);
        Assert.Equal(new Shape(2, 3, 5, 7), t.Shape);
        Assert.True(w.AsSpan().SequenceEqual(t.ToArray()), $"seed {seed}");
        using var s = st.Load("scale", device);
        Assert.Equal(0, s.Shape.Rank);
        Assert.Equal(scalar, s.ToArray());
        using var z = st.Load("empty", device);
        Assert.Equal(0, z.Elements);
    }

    [Fact]
    public void Load_LargeTensorInChunks()
    {
        var rng = KernelLab.NewRng(out int seed);
        float[] big = KernelLab.RandomFloats(rng, (1 << 20) * 2 + 3);
        string path = PathOf("big.safetensors");
        SafetensorsWriter.Write(path, [("big", new[] { big.Length }, big)]);
        using var st = SafetensorsFile.Open(path);
        using var device = new CpuDevice();
        using var t = st.Load("big", device);
        Assert.True(big.AsSpan().SequenceEqual(t.ToArray()), $"seed {seed}");
    }

    [Fact]
    public void Load_OnIlgpuCpu_ChunksAndDTypes()
    {
        var rng = KernelLab.NewRng(out int seed);
        float[] big = KernelLab.RandomFloats(rng, (1 << 20) + 5);
        var half = new byte[2 * 7];
        for (int i = 0; i < 7; i++) BinaryPrimitives.WriteHalfLittleEndian(half.AsSpan(2 * i), (Half)(i - 3.5f));
        string path = PathOf("ilgpu.safetensors");
        SafetensorsWriter.Write(path,
            [new SafetensorsTensor("big", [big.Length], big), new SafetensorsTensor("h", "F16", [7], half), new SafetensorsTensor("u", DType.U8, [3], new byte[] { 9, 8, 7 })]);
        using var st = SafetensorsFile.Open(path);
        using var device = IlgpuDevice.OpenCpuEmulator();
        using (var t = st.Load("big", device))
            Assert.True(big.AsSpan().SequenceEqual(t.ToArray()), $"seed {seed}");
        using (var t = st.Load("h", device))
            Assert.Equal([-3.5f, -2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f], t.ToArray());
        using (var t = st.Load("u", device))
        {
            var bytes = new byte[3];
            device.CopyToHost(t, bytes);
            Assert.Equal(new byte[] { 9, 8, 7 }, bytes);
        }
    }

    [Fact]
    public void HalfAndBFloat16_ConvertToFloat()
    {
        var rng = KernelLab.NewRng(out int seed);
        const int n = 70_001; // more than one conversion chunk
        var halves = new Half[n];
        var bf16 = new ushort[n];
        var f16Bytes = new byte[2 * n];
        var bf16Bytes = new byte[2 * n];
        for (int i = 0; i < n; i++)
        {
            halves[i] = (Half)(float)(rng.NextDouble() * 200 - 100);
            BinaryPrimitives.WriteHalfLittleEndian(f16Bytes.AsSpan(2 * i), halves[i]);
            bf16[i] = (ushort)(BitConverter.SingleToUInt32Bits(KernelLab.RandomFloats(rng, 1, 50)[0]) >> 16);
            BinaryPrimitives.WriteUInt16LittleEndian(bf16Bytes.AsSpan(2 * i), bf16[i]);
        }
        string path = PathOf("half.safetensors");
        SafetensorsWriter.Write(path, [("h", "F16", new[] { n }, (ReadOnlyMemory<byte>)f16Bytes), ("b", "BF16", new[] { n }, (ReadOnlyMemory<byte>)bf16Bytes)]);
        using var st = SafetensorsFile.Open(path);
        Assert.Equal(DType.F16, st["h"].DType);
        Assert.Null(st["b"].DType);
        Assert.Equal(halves.Select(h => (float)h), st.ReadFloat32("h"));
        Assert.Equal(bf16.Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)), st.ReadFloat32("b"));
        using var device = new CpuDevice();
        using var t = st.Load("b", device);
        Assert.True(st.ReadFloat32("b").AsSpan().SequenceEqual(t.ToArray()), $"seed {seed}");
    }

    [Fact]
    public void UnalignedOffsets_ReadCorrectly()
    {
        var rng = KernelLab.NewRng(out int seed);
        float[] f = KernelLab.RandomFloats(rng, 5);
        // U8 [3] then F32 [5] at data offset 3, then F16 [2] at 23; header padded so that the data starts at an odd file position too.
        string json = """{"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"f":{"dtype":"F32","shape":[5],"data_offsets":[3,23]},"h":{"dtype":"F16","shape":[2],"data_offsets":[23,27]}}""";
        if ((8 + json.Length) % 2 == 0) json += " ";
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + 27];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        var data = bytes.AsSpan(8 + header.Length);
        data[0] = 7; data[1] = 200; data[2] = 1;
        for (int i = 0; i < 5; i++) BinaryPrimitives.WriteSingleLittleEndian(data[(3 + 4 * i)..], f[i]);
        BinaryPrimitives.WriteHalfLittleEndian(data[23..], (Half)1.5f);
        BinaryPrimitives.WriteHalfLittleEndian(data[25..], (Half)(-2.25f));
        string path = WriteBytes("unaligned.safetensors", bytes);

        using var st = SafetensorsFile.Open(path);
        Assert.Equal(1, st.DataStart % 2);
        Assert.Equal(["u", "f", "h"], st.Tensors.Select(t => t.Name));
        Assert.Equal(new byte[] { 7, 200, 1 }, st.ReadBytes("u"));
        Assert.True(f.AsSpan().SequenceEqual(st.ReadFloat32("f")), $"seed {seed}");
        Assert.Equal([1.5f, -2.25f], st.ReadFloat32("h"));
        using var device = new CpuDevice();
        using var t = st.Load("f", device);
        Assert.True(f.AsSpan().SequenceEqual(t.ToArray()), $"seed {seed}");
        using var u = st.Load("u", device);
        Assert.Equal(DType.U8, u.DType);
        Assert.Equal(new byte[] { 7, 200, 1 }, u.Span<byte>().ToArray());
    }

    [Fact]
    public void EdgeFiles_AreValid()
    {
        // no tensors at all; space padding after the JSON; empty tensors sharing an offset
        using (var st = SafetensorsFile.Open(WriteBytes("none.safetensors", MalformedSafetensors.File("{}", 0))))
            Assert.Empty(st.Tensors);
        using (var st = SafetensorsFile.Open(WriteBytes("spaces.safetensors", MalformedSafetensors.File(MalformedSafetensors.ValidHeader + "       ", 24))))
            Assert.Equal([2, 3], st["a"].Shape);
        string json = """{"e1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"e2":{"dtype":"I64","shape":[3,0],"data_offsets":[4,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}""";
        using (var st = SafetensorsFile.Open(WriteBytes("empties.safetensors", MalformedSafetensors.File(json, 6))))
        {
            Assert.Equal(4, st.Tensors.Count);
            Assert.Empty(st.ReadBytes("e2"));
        }
    }

    // ---- errors ----

    [Fact]
    public void MalformedCorpus_EachFailsWithItsMessage()
    {
        var cases = MalformedSafetensors.Cases.ToList();
        Assert.True(cases.Count >= 24);
        Assert.Equal(cases.Count, cases.Select(c => c.Name).Distinct().Count());
        foreach (var (name, bytes, fragment) in cases)
        {
            string path = WriteBytes(name + ".safetensors", bytes);
            var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose());
            Assert.True(e.Message.Contains(name + ".safetensors", StringComparison.Ordinal), $"case {name}: message lacks the file name: {e.Message}");
            Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"case {name}: expected '{fragment}' in: {e.Message}");
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(path, e.Path);
            Assert.True(e.Message.Contains(e.Problem, StringComparison.Ordinal), $"case {name}");
        }
    }

    [Fact]
    public void Errors_NameTheTensor()
    {
        string path = WriteBytes("mismatch.safetensors", MalformedSafetensors.File("""{"conv1.weight":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}}""", 100));
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Equal("conv1.weight", e.TensorName);
        Assert.Equal($"{path}: tensor 'conv1.weight': data_offsets [0, 100] hold 100 bytes but F32 [5, 6] needs 120", e.Message);
        Assert.IsAssignableFrom<GpuAnomalyException>(e);
    }

    [Fact]
    public void HostileNames_PrintOnOneLine()
    {
        string name = "evil\nname" + new string('x', 5000);
        string path = WriteBytes("hostile.safetensors", MalformedSafetensors.File("{\"" + name.Replace("\n", "\\n") + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,3]}}", 3));
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Equal(name, e.TensorName);
        Assert.DoesNotContain('\n', e.Message);
        Assert.True(e.Message.Length < 500, e.Message);
    }

    [Fact]
    public void UnknownNameMissingFileAndWrongDType_AreSafetensorsErrors()
    {
        string path = PathOf("ints.safetensors");
        SafetensorsWriter.Write(path, [("i", "I32", new[] { 2 }, (ReadOnlyMemory<byte>)new byte[8])]);
        using var st = SafetensorsFile.Open(path);
        var e = Assert.Throws<SafetensorsException>(() => st.ReadBytes("nope"));
        Assert.Equal("nope", e.TensorName);
        Assert.Contains("no such tensor", e.Message);
        Assert.Contains("reads F32, F16 or BF16", Assert.Throws<SafetensorsException>(() => st.ReadFloat32("i")).Message);
        using var device = new CpuDevice();
        using var t = st.Load("i", device);
        Assert.Equal(DType.I32, t.DType);

        SafetensorsWriter.Write(path, [("d", "F64", new[] { 1 }, (ReadOnlyMemory<byte>)new byte[8])]);
        using var st64 = SafetensorsFile.Open(path);
        Assert.Contains("cannot be loaded", Assert.Throws<SafetensorsException>(() => st64.Load("d", device)).Message);

        string missing = PathOf("missing.safetensors");
        Assert.Contains("cannot open the file", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(missing)).Message);
    }

    [Fact]
    public void Fuzz_MutationsOnlyEverThrowSafetensorsException()
    {
        var rng = KernelLab.NewRng(out int seed);
        string validPath = PathOf("fuzz-base.safetensors");
        SafetensorsWriter.Write(validPath,
            [
                new SafetensorsTensor("a.weight", [3, 2], KernelLab.RandomFloats(rng, 6)),
                new SafetensorsTensor("b", "F16", [5], new byte[10]),
                new SafetensorsTensor("c", "U8", [3], new byte[] { 1, 2, 3 }),
                new SafetensorsTensor("d", "BF16", [], new byte[2]),
            ],
            new Dictionary<string, string> { ["arch"] = "test", ["k"] = "v" });
        byte[] valid = File.ReadAllBytes(validPath);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        const string digits = "0123456789-.e\"{}[],: ";
        string path = PathOf("fuzz.safetensors");
        using var device = new CpuDevice();
        int accepted = 0;
        for (int iter = 0; iter < 400; iter++)
        {
            byte[] bytes = (byte[])valid.Clone();
            int kind = rng.Next(4);
            if (kind == 0)
            {
                bytes = bytes[..rng.Next(bytes.Length)];
            }
            else
            {
                int flips = rng.Next(1, 4);
                for (int f = 0; f < flips; f++)
                {
                    // mostly inside the header, where the interesting parsing is
                    int at = kind == 1 ? rng.Next(bytes.Length) : rng.Next(Math.Min(headerEnd, bytes.Length));
                    bytes[at] = kind == 3 ? (byte)digits[rng.Next(digits.Length)] : (byte)rng.Next(256);
                }
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                using var st = SafetensorsFile.Open(path);
                accepted++;
                foreach (var e in st.Tensors)
                {
                    Assert.Equal(e.ByteLength, st.ReadBytes(e.Name).Length);
                    if (SafetensorsDTypes.IsFloat(e.DTypeTag)) Assert.Equal(e.Elements, st.ReadFloat32(e.Name).Length);
                    if (SafetensorsDTypes.IsFloat(e.DTypeTag) || e.DType is not null) st.Load(e.Name, device).Dispose();
                }
            }
            catch (SafetensorsException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed}, iteration {iter}: {e.GetType().Name} escaped: {e}");
            }
        }
        Assert.True(accepted < 400, $"seed {seed}: no mutation was rejected");
    }

    // ---- writer ----

    [Fact]
    public void Writer_HeaderIsPaddedAndSorted()
    {
        string path = PathOf("sorted.safetensors");
        SafetensorsWriter.Write(path, [("z", new[] { 1 }, new[] { 1f }), ("B", new[] { 2 }, new[] { 2f, 3f }), ("a", new[] { 1 }, new[] { 4f })]);
        byte[] bytes = File.ReadAllBytes(path);
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        string json = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Equal(json.TrimEnd(' ').Length + (json.Length - json.TrimEnd(' ').Length), json.Length);
        Assert.StartsWith("{", json);
        Assert.True(json.IndexOf("\"B\"", StringComparison.Ordinal) < json.IndexOf("\"a\"", StringComparison.Ordinal));
        Assert.True(json.IndexOf("\"a\"", StringComparison.Ordinal) < json.IndexOf("\"z\"", StringComparison.Ordinal));
        using var st = SafetensorsFile.Open(path);
        Assert.Equal(new long[] { 0, 8, 12 }, st.Tensors.Select(t => t.Offset));
        Assert.Equal([2f, 3f, 4f, 1f], st.Tensors.SelectMany(t => st.ReadFloat32(t.Name)));
    }

    [Fact]
    public void Writer_RejectsBadArgumentsBeforeWriting()
    {
        string path = PathOf("bad.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("a", new[] { 2 }, new[] { 1f, 2f }), ("a", new[] { 1 }, new[] { 1f })]));
        Assert.Contains("needs 12 bytes, the data holds 8", Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("a", new[] { 3 }, new[] { 1f, 2f })])).Message);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("a", "F128", new[] { 1 }, (ReadOnlyMemory<byte>)new byte[16])]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("__metadata__", new[] { 1 }, new[] { 1f })]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("a", new[] { -1 }, Array.Empty<float>())]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("bad\ud800", new[] { 1 }, new[] { 1f })]));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Writer_MissingDirectory_ThrowsAndLeavesNothing()
    {
        string dir = PathOf("no-such-dir");
        string path = Path.Combine(dir, "x.safetensors");
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsWriter.Write(path, [("a", new[] { 1 }, new[] { 1f })]));
        Assert.Contains("cannot write the file", e.Message);
        Assert.False(Directory.Exists(dir));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Writer_OverwriteReplacesWholeFile()
    {
        string path = PathOf("over.safetensors");
        var rng = KernelLab.NewRng(out int seed);
        SafetensorsWriter.Write(path, [("big", new[] { 10000 }, KernelLab.RandomFloats(rng, 10000))]);
        float[] small = KernelLab.RandomFloats(rng, 3);
        SafetensorsWriter.Write(path, [("small", new[] { 3 }, small)], new Dictionary<string, string> { ["v"] = "2" });
        using var st = SafetensorsFile.Open(path);
        Assert.Equal(["small"], st.Tensors.Select(t => t.Name));
        Assert.Equal(small, st.ReadFloat32("small"));
        Assert.Equal(st.DataStart + 12, new FileInfo(path).Length);
        Assert.Equal([path], Directory.GetFiles(_dir));
        _ = seed;

        // a failed write leaves the old file whole
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [("x", new[] { 2 }, new[] { 1f })]));
        using var again = SafetensorsFile.Open(path);
        Assert.Equal(small, again.ReadFloat32("small"));
    }
}
