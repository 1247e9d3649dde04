using System.CommandLine;
using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Demo;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly demo`: the main job until the anomaly model lands. Runs the bundled Uninformed
/// Students patch networks (exported from PyTorch) densely on bundled Fashion-MNIST images,
/// compares every descriptor with PyTorch's, and times the graph. Exit 1 if PyTorch is not matched.
/// </summary>
internal static class DemoCommand
{
    public const double Tolerance = 1e-5;

    public static Command Create(CliOutput output)
    {
        var device = CommonOptions.Device();
        var model = new Option<string>("--model") { Description = "Model file", DefaultValueFactory = _ => PatchNetworkDemo.BundledModel };
        var golden = new Option<string>("--golden") { Description = "PyTorch fixture: 'input' and 'p{P}.dense' tensors", DefaultValueFactory = _ => PatchNetworkDemo.BundledGolden };
        var repeat = new Option<int>("--repeat") { Description = "Timed runs (median reported)", DefaultValueFactory = _ => 10 };
        var cmd = new Command("demo", "Run the bundled patch networks on sample images and check them against PyTorch.") { device, model, golden, repeat };
        cmd.SetAction(r =>
        {
            var console = InfoCommand.Console(output.Out);
            using var fixture = SafetensorsFile.Open(r.GetValue(golden)!);
            if (!fixture.Contains("input")) throw new SafetensorsException(fixture.Path, "input", "tensor missing");
            var inputShape = fixture["input"].Shape;
            if (inputShape.Count != 4) throw new SafetensorsException(fixture.Path, "input", $"shape [{string.Join(", ", inputShape)}] is not [N, C, H, W]");
            var images = fixture.ReadFloat32("input");

            using var dev = Device.Open(r.GetValue(device)!);
            var load = Stopwatch.StartNew();
            using var demo = PatchNetworkDemo.Load(r.GetValue(model)!, dev, inputShape[0], inputShape[2], inputShape[3]);
            if (!demo.InputShape.Dims.SequenceEqual(inputShape.ToArray()))
                throw new SafetensorsException(fixture.Path, "input", $"shape [{string.Join(", ", inputShape)}] does not match the model's input {demo.InputShape}");
            var outputs = demo.Run(images); // first run: allocation and kernel compilation
            load.Stop();

            console.WriteLine($"device:  {dev.Name} ({dev.Description})");
            console.WriteLine($"model:   {Path.GetFileName(r.GetValue(model))}, patch networks p = {string.Join(", ", demo.Scales)}, " +
                $"{demo.Plan.Graph.Nodes.Count} nodes, {DeviceOutOfMemoryException.FormatBytes(demo.Plan.Graph.ConstantBytes)} of weights");
            console.WriteLine($"input:   {demo.InputShape} from {Path.GetFileName(fixture.Path)}");
            console.WriteLine($"memory:  peak activations {DeviceOutOfMemoryException.FormatBytes(demo.Plan.PeakActivationBytes)} " +
                $"(without buffer reuse: {DeviceOutOfMemoryException.FormatBytes(demo.Plan.NaiveActivationBytes)})");

            var table = new Table().AddColumns("output", "shape", "rel. L2 vs PyTorch", "max |diff|", "mean |descriptor|", "status");
            bool ok = true;
            foreach (int p in demo.Scales)
            {
                string name = PatchNetworkDemo.OutputName(p);
                if (!fixture.Contains(name)) { table.AddRow(name, "-", "-", "-", "-", "no PyTorch reference"); continue; }
                var expected = fixture.ReadFloat32(name);
                var actual = outputs[p];
                if (expected.Length != actual.Length)
                    throw new SafetensorsException(fixture.Path, name, $"{expected.Length} values, the model produced {actual.Length}");
                double num = 0, den = 0, maxDiff = 0, mean = 0;
                for (int i = 0; i < actual.Length; i++)
                {
                    double d = (double)actual[i] - expected[i];
                    num += d * d;
                    den += (double)expected[i] * expected[i];
                    maxDiff = Math.Max(maxDiff, double.IsNaN(d) ? double.PositiveInfinity : Math.Abs(d));
                    mean += Math.Abs(actual[i]);
                }
                double rel = Math.Sqrt(num / den);
                bool pass = rel <= Tolerance; // NaN fails
                ok &= pass;
                table.AddRow(name, Markup.Escape($"[{string.Join(", ", fixture[name].Shape)}]"), $"{rel:E2}", $"{maxDiff:E2}", $"{mean / actual.Length:F4}", pass ? "matches" : "MISMATCH");
            }
            console.Write(table);

            int n = Math.Max(1, r.GetValue(repeat));
            var times = new double[n];
            for (int i = 0; i < n; i++)
            {
                var sw = Stopwatch.StartNew();
                demo.RunOnDevice(images);
                times[i] = sw.Elapsed.TotalMilliseconds;
            }
            Array.Sort(times);
            double median = times[n / 2];
            console.WriteLine($"time:    first run {load.Elapsed.TotalMilliseconds:F0} ms (load, plan, kernel compilation); " +
                $"then median {median:F2} ms over {n} runs = {demo.InputShape[0] * 1000 / median:F1} images/s (upload + all scales + sync)");
            console.WriteLine(ok ? $"result:  the engine reproduces PyTorch (relative L2 <= {Tolerance:E0})" : "result:  MISMATCH with PyTorch");
            return ok ? 0 : GpuAnomalyCli.ExitCheckFailed;
        });
        return cmd;
    }
}
