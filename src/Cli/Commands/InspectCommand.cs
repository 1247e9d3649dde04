using System.CommandLine;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Engine.Weights;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly inspect FILE`: a weights file's tensors and metadata, an ONNX model's graph, or a lone ONNX tensor.
/// A bad file: one line, exit 2.
/// </summary>
internal static class InspectCommand
{
    public static Command Create(CliOutput output)
    {
        var file = new Argument<string>("file") { Description = "A .safetensors file, an .onnx model, or a .pb ONNX tensor" }.NotAnOption();
        var cmd = new Command("inspect", "List a weights file's tensors (name, dtype, shape, bytes) and its metadata, or an ONNX model's " +
                                         "opsets, inputs, outputs, initializers and op types.") { file };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            var console = InfoCommand.Console(output.Out);
            switch (Kind(path))
            {
                case FileKind.OnnxModel: OnnxInspect.Model(console, OnnxModel.Load(path)); return 0;
                case FileKind.OnnxTensor: OnnxInspect.Tensor(console, path, OnnxTensor.Load(path)); return 0;
            }
            if (!File.Exists(path)) throw new SafetensorsException(path, null, Directory.Exists(path) ? "is a directory" : "no such file");
            using var st = SafetensorsFile.Open(path);
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

    private enum FileKind { Safetensors, OnnxModel, OnnxTensor }

    /// <summary>
    /// By extension (.onnx, .pb as the ONNX backend tests name tensors, .safetensors); other names by content: a
    /// safetensors file has its JSON's '{' at byte 8, a serialized model starts with the tag of ir_version (0x08).
    /// </summary>
    private static FileKind Kind(string path)
    {
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".onnx": return FileKind.OnnxModel;
            case ".pb": return FileKind.OnnxTensor;
            case ".safetensors": return FileKind.Safetensors;
        }
        try
        {
            Span<byte> head = stackalloc byte[9];
            using var f = File.OpenRead(path);
            int n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return n >= 1 && head[0] == 0x08 && !(n == 9 && head[8] == (byte)'{') ? FileKind.OnnxModel : FileKind.Safetensors;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return FileKind.Safetensors; // its reader reports the file as it does for any unreadable file
        }
    }
}
