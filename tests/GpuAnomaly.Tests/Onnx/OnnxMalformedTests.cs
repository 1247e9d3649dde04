using GpuAnomaly.Engine.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// Hostile and broken ONNX files: each fails with an <see cref="OnnxFormatException"/> that names the file, where in
/// it, and what is wrong; and a seeded mutation run over the valid fixtures, where nothing but that exception escapes.
/// </summary>
public sealed class OnnxMalformedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnx-malformed-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> CaseNames() => [.. MalformedOnnx.Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Case_FailsWithLocationAndProblem(string name)
    {
        var (_, bytes, fragment, location) = MalformedOnnx.Cases.Single(c => c.Name == name);
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(bytes, $"{name}.onnx", _dir));
        Assert.Contains(fragment, e.Message);
        Assert.StartsWith($"{name}.onnx: ", e.Message);
        if (location is not null) Assert.Equal(location, e.Location);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Cases_CoverEnough() => Assert.True(MalformedOnnx.Cases.Count() >= 90, $"only {MalformedOnnx.Cases.Count()} cases");

    [Theory]
    [InlineData("cycle.onnx", "graph", "the nodes form a cycle, so no order can run them: 'second' -> 'third' -> 'second'")]
    [InlineData("duplicate_output.onnx", "graph.node[1] 'neg'", "output 'y' is already defined by graph.node[0] 'relu'")]
    [InlineData("dangling_input.onnx", "graph.node[0] 'add'", "input 1 'missing' is produced by no node and is not a graph input or initializer")]
    [InlineData("raw_size.onnx", "graph.initializer[0] 'w'", "raw_data holds 7 bytes but FLOAT [2] needs 8")]
    [InlineData("external_escape.onnx", "graph.initializer[0] 'w'", "external data file '../tiny_cnn_external.data': the location leaves the model's directory ('..')")]
    [InlineData("external_absolute.onnx", "graph.initializer[0] 'w'", "external data file '/etc/passwd': the location is an absolute path")]
    [InlineData("external_missing.onnx", "graph.initializer[0] 'w'", "external data file 'no_such_file.data' does not exist")]
    [InlineData("external_short.onnx", "graph.initializer[0] 'w'", "external data file 'short.data': bytes [0, 0 + 8) run past its end (4 bytes)")]
    public void PythonMadeFile_FailsWithLocationAndProblem(string file, string location, string fragment)
    {
        string path = Path.Combine(OnnxFixtures.Dir, "malformed", file);
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(path));
        Assert.Equal(path, e.File);
        Assert.Equal(location, e.Location);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void LongCycle_NamesItsFirstNodes()
    {
        // n0 reads the output of n999, each other node that of the one before: one cycle of 1000 nodes.
        var nodes = Enumerable.Range(0, 1000).Select(i => OnnxProtos.Node("Neg", [$"v{(i + 999) % 1000}"], [$"v{i}"], $"n{i}")).ToArray();
        var bytes = OnnxProtos.Model(OnnxProtos.Graph(nodes: [.. nodes, OnnxProtos.AddNode()]));
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(bytes, "ring", null));
        Assert.EndsWith("the nodes form a cycle, so no order can run them: 'n0' -> 'n1' -> 'n2' -> 'n3' -> 'n4' -> 'n5' -> 'n6' -> 'n7' -> ... (1000 nodes in all)", e.Message);
    }

    [Fact]
    public void OtherFormats_AreNamed()
    {
        string safetensors = Path.Combine(AppContext.BaseDirectory, "Fixtures", "vim_fixture.safetensors");
        Assert.Contains("is a safetensors file", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(safetensors)).Message);
        string png = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "samples"), "*.png").First();
        Assert.Contains("is a PNG image, not an ONNX model", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(png)).Message);
        // A lone tensor is no model, and a model no lone tensor: both fail on their first mismatching field.
        Assert.Contains("field 2 (producer_name) has wire type 0 (varint)",
            Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(OnnxFixtures.PathOf("tensor_float.pb"))).Message);
        Assert.Contains("field 2 (data_type) has wire type 2 (length-delimited)",
            Assert.Throws<OnnxFormatException>(() => OnnxTensor.Load(OnnxFixtures.PathOf("tiny_cnn.onnx"))).Message);
    }

    /// <summary>
    /// Bit flips, byte changes, truncations, deleted and inserted runs, and varint-shaped insertions (lengths and
    /// dims that are huge or negative) over the valid fixtures; each result is parsed and, when it parses, every
    /// initializer decoded. Only <see cref="OnnxFormatException"/> may escape.
    /// </summary>
    [Fact]
    public void SeededMutations_OnlyOnnxFormatException()
    {
        var seeds = OnnxFixtures.Models.Select(f => (f, File.ReadAllBytes(OnnxFixtures.PathOf(f))))
            .Concat(OnnxFixtures.Tensors.Select(f => (f, File.ReadAllBytes(OnnxFixtures.PathOf(f))))).ToArray();
        var rng = new Random(13);
        int parsed = 0, refused = 0;
        for (int n = 0; n < 4000; n++)
        {
            var (file, seed) = seeds[n % seeds.Length];
            var input = Mutate(seed, rng);
            try
            {
                if (file.EndsWith(".pb")) Decode(OnnxTensor.Parse(input, file, OnnxFixtures.Dir));
                else
                {
                    var m = OnnxModel.Parse(input, file, OnnxFixtures.Dir);
                    foreach (var node in m.Graph.AllNodes())
                        foreach (var a in node.Attributes.Values) _ = a.ToString();
                    foreach (var t in m.Graph.Initializers) Decode(t);
                    _ = m.OpCounts();
                }
                parsed++;
            }
            catch (OnnxFormatException e)
            {
                Assert.False(string.IsNullOrEmpty(e.Problem));
                refused++;
            }
            catch (Exception e)
            {
                string saved = Path.Combine(_dir, $"mutation-{n}.onnx");
                File.WriteAllBytes(saved, input);
                Assert.Fail($"mutation {n} of {file} (Random(13)) threw {e.GetType().Name}: {e.Message} (input kept only for this run)\n{e}");
            }
        }
        // Both outcomes must occur, or the mutations are too tame (or too wild) to test anything.
        Assert.True(parsed > 100 && refused > 1000, $"{parsed} parsed, {refused} refused");
    }

    private static void Decode(OnnxTensor t)
    {
        try
        {
            _ = OnnxFixtures.Values(t);
        }
        catch (OnnxFormatException) { }
        _ = t.ToString();
    }

    private static byte[] Mutate(byte[] seed, Random rng)
    {
        var b = new List<byte>(seed);
        int steps = 1 + rng.Next(3);
        for (int i = 0; i < steps && b.Count > 0; i++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(7))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[at] = (byte)rng.Next(256); break;
                case 2: b.RemoveRange(at, b.Count - at); break;
                case 3: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(8))); break;
                case 4: b.InsertRange(at, Enumerable.Range(0, 1 + rng.Next(8)).Select(_ => (byte)rng.Next(256))); break;
                case 5: b.InsertRange(at, ProtoBuilder.Varint(Interesting[rng.Next(Interesting.Length)])); break;
                default: b[at] = (byte)(b[at] < 0x80 ? b[at] | 0x80 : b[at] & 0x7F); break; // a varint's continuation bit
            }
        }
        return [.. b];
    }

    private static readonly ulong[] Interesting = [0, 1, 0x7F, 0x80, 0xFF, int.MaxValue, uint.MaxValue, 1UL << 40, long.MaxValue, ulong.MaxValue];
}
