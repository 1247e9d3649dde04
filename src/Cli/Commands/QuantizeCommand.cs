using System.CommandLine;
using System.Text.Json;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Ternary;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly quantize IN OUT [--layers REGEX] [--scale tensor|row] [--activations a32|a8]`: BitNet b1.58
/// ternary quantization of the selected Linear and Conv2d weights (<see cref="TernaryFileQuantizer"/>), with a
/// report per layer (bytes before/after, relative weight error) and in total. `predict` and `eval` load the result
/// like any model: each layer runs float or ternary as stored.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create(CliOutput output)
    {
        var input = new Argument<FileInfo>("IN") { Description = "The model file (safetensors) to quantize" }.NotAnOption();
        var outFile = new Argument<FileInfo>("OUT") { Description = "The new file to write (never the input)" }.NotAnOption();
        var layers = new Option<string>("--layers") { Description = "Regex over tensor names: which weights to quantize", DefaultValueFactory = _ => TernaryFileQuantizer.DefaultLayers };
        var scale = new Option<string>("--scale") { Description = "One gamma per tensor or per output row", DefaultValueFactory = _ => "tensor" };
        scale.AcceptOnlyFromAmong("tensor", "row");
        var acts = new Option<string>("--activations") { Description = "a32: float activations (1.58-bit FLUX); a8: int8 per token (BitNet b1.58)", DefaultValueFactory = _ => "a32" };
        acts.AcceptOnlyFromAmong("a32", "a8");
        var json = new Option<FileInfo?>("--json") { Description = "Also write the report as JSON to this file" };
        var cmd = new Command("quantize", "Quantize Linear/Conv2d weights to 1.58-bit ternary (BitNet b1.58 absmean); write a new file.")
            { input, outFile, layers, scale, acts, json };
        cmd.SetAction(r =>
        {
            var report = TernaryFileQuantizer.Quantize(r.GetValue(input)!.FullName, r.GetValue(outFile)!.FullName, r.GetValue(layers),
                r.GetValue(scale) == "row" ? TernaryScale.Row : TernaryScale.Tensor,
                WeightLayers.ParseActivations(r.GetValue(acts)!)!.Value);
            var console = InfoCommand.Console(output.Out);
            var table = new Table().AddColumns("layer", "shape", "before", "after", "ratio", "rel. weight error", "scale", "activations");
            foreach (var l in report.Layers)
                table.AddRow(Markup.Escape(l.Name), Markup.Escape(l.Shape), $"{l.BytesBefore:N0} B {l.DTypeBefore}", $"{l.BytesAfter:N0} B",
                    $"{(double)l.BytesBefore / l.BytesAfter:F1}x", $"{l.RelativeError:F4}", l.Scale, l.Activations);
            long lb = report.Layers.Sum(l => l.BytesBefore), la = report.Layers.Sum(l => l.BytesAfter);
            table.AddRow($"[bold]{report.Layers.Count} layers[/]", "", $"{lb:N0} B", $"{la:N0} B", $"{(double)lb / la:F1}x",
                $"{report.Layers.Average(l => l.RelativeError):F4} (mean)", "", "");
            console.Write(table);
            console.WriteLine($"file: {report.FileBytesBefore:N0} -> {report.FileBytesAfter:N0} tensor bytes " +
                $"({(double)report.FileBytesBefore / report.FileBytesAfter:F2}x smaller; {report.TensorsCopied} tensors copied as they were) -> {r.GetValue(outFile)!.FullName}");
            if (r.GetValue(json) is { } jf)
                File.WriteAllText(jf.FullName, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }
}
