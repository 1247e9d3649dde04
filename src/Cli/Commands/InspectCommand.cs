using System.CommandLine;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>`gpuanomaly inspect FILE`: a weights file's tensors and metadata. A bad file: one line, exit 2.</summary>
internal static class InspectCommand
{
    public static Command Create(CliOutput output)
    {
        var file = new Argument<string>("file") { Description = "A .safetensors file" }.NotAnOption();
        var cmd = new Command("inspect", "List a weights file's tensors (name, dtype, shape, bytes) and its metadata.") { file };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            if (!File.Exists(path)) throw new SafetensorsException(path, null, Directory.Exists(path) ? "is a directory" : "no such file");
            using var st = SafetensorsFile.Open(path);
            var console = InfoCommand.Console(output.Out);
            var table = new Table().AddColumns("tensor", "dtype", "shape", "bytes");
            long total = 0, elements = 0;
            foreach (var t in st.Tensors)
            {
                table.AddRow(Markup.Escape(t.Name), t.DTypeTag, Markup.Escape($"[{string.Join(", ", t.Shape)}]"), t.ByteLength.ToString());
                total += t.ByteLength;
                elements += t.Elements;
            }
            console.WriteLine($"{path}: {st.Tensors.Count} tensors, {elements} elements, {DeviceOutOfMemoryException.FormatBytes(total)}");
            console.Write(table);
            if (st.Metadata.Count > 0)
            {
                var meta = new Table().AddColumns("metadata key", "value");
                foreach (var (k, v) in st.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    meta.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 400 ? v[..400] + "..." : v));
                console.Write(meta);
            }
            return 0;
        });
        return cmd;
    }
}
