using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>What `gpuanomaly inspect` prints for an ONNX model or a lone ONNX tensor.</summary>
internal static class OnnxInspect
{
    public static void Model(IAnsiConsole console, OnnxModel m)
    {
        string opsets = string.Join(", ", m.Opsets.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{(o.Key.Length == 0 ? "ai.onnx" : o.Key)} {o.Value}"));
        string producer = $"{m.ProducerName} {m.ProducerVersion}".Trim();
        console.WriteLine($"{m.File}: ONNX model, IR version {m.IrVersion}, producer {(producer.Length == 0 ? "(none)" : producer)}, opsets {opsets}");
        var g = m.Graph;
        var (elements, bytes) = g.InitializerSize();
        console.WriteLine($"graph '{g.Name}': {g.Nodes.Count} nodes ({g.AllNodes().Count()} with subgraphs), {g.Initializers.Count} initializers " +
                          $"({elements} elements, {DeviceOutOfMemoryException.FormatBytes(bytes)}" +
                          $"{(g.Initializers.Any(t => t.Storage == OnnxTensorStorage.External) ? ", some in external data" : "")})");
        console.Write(Values("input", g.RuntimeInputs));
        console.Write(Values("output", g.Outputs));
        var ops = new Table().AddColumns("op type", "nodes");
        foreach (var c in m.OpCounts()) ops.AddRow(Markup.Escape(c.OpType), c.Count.ToString());
        console.Write(ops);
        if (m.Metadata.Count > 0)
        {
            var meta = new Table().AddColumns("metadata key", "value");
            foreach (var (k, v) in m.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                meta.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 400 ? v[..400] + "..." : v));
            console.Write(meta);
        }
    }

    public static void Tensor(IAnsiConsole console, string path, OnnxTensor t)
    {
        console.WriteLine($"{path}: ONNX tensor '{t.Name}', {t.ElementType.ProtoName()} [{string.Join(", ", t.Dims)}], {t.ElementCount} elements, " +
                          $"{DeviceOutOfMemoryException.FormatBytes(t.ByteLength)} ({t.Storage.ToString().ToLowerInvariant()})");
    }

    private static Table Values(string what, IReadOnlyList<OnnxValueInfo> values)
    {
        var table = new Table().AddColumns(what, "dtype", "shape");
        foreach (var v in values)
        {
            bool tensor = v.Kind is OnnxValueKind.Tensor or OnnxValueKind.SparseTensor;
            table.AddRow(Markup.Escape(v.Name), tensor ? v.ElementType.ProtoName() : v.Kind.ToString().ToLowerInvariant(), Markup.Escape(tensor ? v.ShapeText : ""));
        }
        return table;
    }
}
