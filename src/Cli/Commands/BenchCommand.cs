using System.CommandLine;
using System.Text.Json;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Benchmarks;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly bench`: the GPU harness. Measures the device's ceilings first (fp32 FMA rate,
/// copy bandwidth), then times each kernel (warm-up, device-side timing, median of samples)
/// and reports time, GFLOP/s, GB/s and the fraction of the measured peak.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(CliOutput output)
    {
        var device = CommonOptions.Device();
        var small = new Option<bool>("--small") { Description = "Tiny shapes (for the ilgpu-cpu emulator and smoke tests)" };
        var filter = new Option<string>("--filter") { Description = "Only kernels whose name or shape contains this text", DefaultValueFactory = _ => "" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file" };
        var model = new Option<FileInfo?>("--model") { Description = "Time this model (Uninformed Students or window_vit) end to end instead of the kernels" };
        var batch = CommonOptions.Batch(1, "With --model: images per run");
        var size = new Option<int?>("--size") { Description = "With --model: square input size (default: the model's)" };
        var repeat = new Option<int>("--repeat") { Description = "With --model: timed runs after the first", DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "With --model: also time every plan node (ms, % of total, GFLOP/s or GB/s)" };
        var cmd = new Command("bench", "Time the kernels (or a whole model) on a device against its measured peak.")
            { device, small, filter, json, model, batch, size, repeat, profile };
        cmd.SetAction(r =>
        {
            using var dev = Device.Open(r.GetValue(device)!);
            var console = InfoCommand.Console(output.Out);
            console.WriteLine($"device: {dev.Name} ({dev.Description})");
            if (r.GetValue(model) is { } modelFile)
            {
                if (r.GetValue(batch) < 1 || r.GetValue(size) is < 1 || r.GetValue(repeat) < 1)
                {
                    output.Error.WriteLine("error: --batch, --size and --repeat must be positive");
                    return GpuAnomalyCli.ExitBadInput;
                }
                var m = ModelBench.Run(dev, modelFile.FullName, r.GetValue(batch), r.GetValue(size), r.GetValue(repeat), r.GetValue(profile), console);
                if (r.GetValue(json) is { } mf)
                    File.WriteAllText(mf.FullName, JsonSerializer.Serialize(m, new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            if (r.GetValue(profile))
            {
                output.Error.WriteLine("error: --profile needs --model (it times the nodes of a model's plan)");
                return GpuAnomalyCli.ExitBadInput;
            }
            var peaks = DevicePeaks.Measure(dev, quick: r.GetValue(small));
            console.WriteLine($"measured peak: {peaks.Fp32GFlops:F0} GFLOP/s fp32 FMA, {peaks.CopyGBps:F0} GB/s copy (read + write)");
            var results = KernelSuite.Run(dev, r.GetValue(small), r.GetValue(filter)!, name => output.Error.WriteLine($"timing {name}"));

            var table = new Table().AddColumns("kernel", "shape", "median ms", "GFLOP/s", "% FMA peak", "GB/s", "% copy BW", "launches x samples");
            foreach (var x in results)
                table.AddRow(Markup.Escape(x.Kernel), Markup.Escape(x.Shape), $"{x.MedianMs:F4}", $"{x.GFlops:F1}",
                    $"{100 * x.GFlops / peaks.Fp32GFlops:F1}", $"{x.GBps:F1}", $"{100 * x.GBps / peaks.CopyGBps:F1}",
                    $"{x.LaunchesPerSample} x {x.Samples}");
            console.Write(table);

            if (r.GetValue(json) is { } file)
            {
                var doc = new { device = dev.Name, description = dev.Description, peaks, results };
                File.WriteAllText(file.FullName, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return cmd;
    }
}
