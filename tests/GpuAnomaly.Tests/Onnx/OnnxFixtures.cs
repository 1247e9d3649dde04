using System.Buffers.Binary;
using System.Text.Json;
using GpuAnomaly.Engine.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The files of Fixtures/onnx (tools/export/onnx_reader_fixtures.py) and their description by onnx's Python API
/// (expected.json), with the comparisons of what the C# reader parsed against it.
/// </summary>
public static class OnnxFixtures
{
    public static readonly string[] Models = ["tiny_cnn.onnx", "tiny_cnn_external.onnx", "typed.onnx", "subgraph.onnx"];
    public static readonly string[] Tensors = ["tensor_float.pb", "tensor_int64.pb"];

    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx");

    public static string PathOf(string name) => Path.Combine(Dir, name);

    private static readonly Lazy<JsonDocument> ExpectedJson = new(() => JsonDocument.Parse(File.ReadAllBytes(PathOf("expected.json"))));

    public static JsonElement Expected(string name) => ExpectedJson.Value.RootElement.GetProperty(name);

    public static void AssertModel(JsonElement e, OnnxModel m)
    {
        Assert.Equal(e.GetProperty("ir_version").GetInt64(), m.IrVersion);
        Assert.Equal(e.GetProperty("producer_name").GetString(), m.ProducerName);
        Assert.Equal(e.GetProperty("producer_version").GetString(), m.ProducerVersion);
        Assert.Equal(Strings(e.GetProperty("opsets"), v => v.GetInt64()), m.Opsets.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList());
        Assert.Equal(Strings(e.GetProperty("metadata"), v => v.GetString()!), m.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList());
        AssertGraph(e.GetProperty("graph"), m.Graph);
    }

    public static void AssertGraph(JsonElement e, OnnxGraph g)
    {
        Assert.Equal(e.GetProperty("name").GetString(), g.Name);
        var nodes = e.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(nodes.Count, g.Nodes.Count);
        for (int i = 0; i < nodes.Count; i++)
        {
            var (en, n) = (nodes[i], g.Nodes[i]);
            string at = n.Location;
            Assert.True(en.GetProperty("name").GetString() == n.Name, at);
            Assert.True(en.GetProperty("op_type").GetString() == n.OpType, at);
            Assert.True(en.GetProperty("domain").GetString() == n.Domain, at);
            Assert.Equal(en.GetProperty("inputs").EnumerateArray().Select(v => v.GetString()!), n.Inputs);
            Assert.Equal(en.GetProperty("outputs").EnumerateArray().Select(v => v.GetString()!), n.Outputs);
            var attributes = en.GetProperty("attributes").EnumerateObject().ToList();
            Assert.True(attributes.Count == n.Attributes.Count, $"{at}: {attributes.Count} attributes expected, {n.Attributes.Count} read");
            foreach (var a in attributes) AssertAttribute(a.Value, n.Attribute(a.Name));
        }
        AssertList(e.GetProperty("initializers"), g.Initializers, AssertTensor);
        AssertList(e.GetProperty("inputs"), g.Inputs, AssertValueInfo);
        AssertList(e.GetProperty("outputs"), g.Outputs, AssertValueInfo);
        AssertList(e.GetProperty("value_info"), g.ValueInfo, AssertValueInfo);
    }

    private static void AssertAttribute(JsonElement e, OnnxAttribute a)
    {
        var type = (OnnxAttributeType)e.GetProperty("type").GetInt32();
        Assert.True(type == a.Type, $"{a.Location}: {type} expected, {a.Type} read");
        var v = e.GetProperty("value");
        switch (type)
        {
            case OnnxAttributeType.Float: Assert.Equal(v.GetDouble(), (double)a.AsFloat()); break;
            case OnnxAttributeType.Int: Assert.Equal(v.GetInt64(), a.AsInt()); break;
            case OnnxAttributeType.String: Assert.Equal(v.GetString(), a.AsString()); break;
            case OnnxAttributeType.Tensor: AssertTensor(v, a.AsTensor()); break;
            case OnnxAttributeType.Graph: AssertGraph(v, a.AsGraph()); break;
            case OnnxAttributeType.Floats: Assert.Equal(v.EnumerateArray().Select(x => x.GetDouble()), a.AsFloats().Select(f => (double)f)); break;
            case OnnxAttributeType.Ints: Assert.Equal(v.EnumerateArray().Select(x => x.GetInt64()), a.AsInts()); break;
            case OnnxAttributeType.Strings: Assert.Equal(v.EnumerateArray().Select(x => x.GetString()!), a.AsStrings()); break;
            case OnnxAttributeType.Tensors: AssertList(v, a.AsTensors(), AssertTensor); break;
            case OnnxAttributeType.Graphs: AssertList(v, a.AsGraphs(), AssertGraph); break;
            default: Assert.Fail($"{a.Location}: unexpected type {type} in expected.json"); break;
        }
    }

    public static void AssertTensor(JsonElement e, OnnxTensor t)
    {
        string at = t.Location;
        Assert.True(e.GetProperty("name").GetString() == t.Name, at);
        Assert.True(e.GetProperty("data_type").GetInt32() == (int)t.ElementType, $"{at}: {t.ElementType}");
        Assert.Equal(e.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()), t.Dims);
        Assert.True(e.GetProperty("storage").GetString() == t.Storage.ToString().ToLowerInvariant(), $"{at}: storage {t.Storage}");
        if (e.TryGetProperty("strings", out var strings))
        {
            Assert.Equal(strings.EnumerateArray().Select(s => s.GetString()!), t.ToStringArray());
            return;
        }
        double[] values = Values(t);
        Assert.Equal(t.ElementCount, values.LongLength);
        Assert.Equal(e.GetProperty("first").EnumerateArray().Select(x => x.GetDouble()), values.Take(4));
        double expected = e.GetProperty("checksum").GetDouble(), sum = 0;
        for (int i = 0; i < values.Length; i++) sum += values[i] * (i % 7 + 1);
        Assert.True(Math.Abs(sum - expected) <= 1e-12 * Math.Max(1, Math.Abs(expected)), $"{at}: checksum {sum}, onnx says {expected}");
    }

    /// <summary>The elements as float64, through the conversion an importer would use for the type.</summary>
    public static double[] Values(OnnxTensor t) => t.ElementType switch
    {
        OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double => t.ToDoubleArray(),
        OnnxDataType.Bool => t.ToBoolArray().Select(b => b ? 1.0 : 0.0).ToArray(),
        OnnxDataType.UInt64 => Enumerable.Range(0, (int)t.ElementCount)
            .Select(i => (double)BinaryPrimitives.ReadUInt64LittleEndian(t.RawData().Span[(8 * i)..])).ToArray(),
        _ => t.ToInt64Array().Select(v => (double)v).ToArray(),
    };

    private static void AssertValueInfo(JsonElement e, OnnxValueInfo v)
    {
        Assert.Equal(e.GetProperty("name").GetString(), v.Name);
        Assert.True(e.GetProperty("elem_type").GetInt32() == (int)v.ElementType, $"{v.Location}: {v.ElementType}");
        var dims = e.GetProperty("dims");
        if (dims.ValueKind == JsonValueKind.Null)
        {
            Assert.True(v.Shape is null, $"{v.Location}: shape {v.ShapeText}, onnx has none");
            return;
        }
        Assert.NotNull(v.Shape);
        Assert.Equal(dims.EnumerateArray().Select(d => d.ValueKind switch
        {
            JsonValueKind.Number => new OnnxDim(d.GetInt64(), null),
            JsonValueKind.String => new OnnxDim(null, d.GetString()),
            _ => new OnnxDim(null, null),
        }), v.Shape);
    }

    private static void AssertList<T>(JsonElement e, IReadOnlyList<T> actual, Action<JsonElement, T> check)
    {
        var expected = e.EnumerateArray().ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) check(expected[i], actual[i]);
    }

    private static List<KeyValuePair<string, T>> Strings<T>(JsonElement e, Func<JsonElement, T> value) =>
        e.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, value(p.Value))).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
}
