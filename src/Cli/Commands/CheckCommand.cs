using System.CommandLine;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Validation;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>`gpuanomaly check`: every kernel on a device against the float64 reference (for devices CI lacks).</summary>
internal static class CheckCommand
{
    public static Command Create(CliOutput output)
    {
        var device = CommonOptions.Device();
        var cases = new Option<int>("--cases") { Description = "Random shapes per op", DefaultValueFactory = _ => 50 };
        var seed = new Option<int?>("--seed") { Description = "Seed (default: fresh)" };
        var cmd = new Command("check", "Run every kernel on random shapes against its float64 reference; exit 1 on any failure.") { device, cases, seed };
        cmd.SetAction(r =>
        {
            int s = r.GetValue(seed) ?? Random.Shared.Next();
            using var dev = Device.Open(r.GetValue(device)!);
            var results = KernelCheck.Run(dev, r.GetValue(cases), s);
            var console = InfoCommand.Console(output.Out);
            // Tolerances differ by kernel: 0 for exact integer accumulators and permutations, 1e-6 for GELU's floored metric.
            var table = new Table().AddColumns("kernel", "cases", "worst rel. L2", "tolerance", "failed");
            foreach (var g in results.GroupBy(x => x.Kernel))
                table.AddRow(g.Key, g.Count().ToString(), $"{g.Max(x => x.RelL2):E2}", (g.Max(x => x.Tolerance) == 0 ? "exact" : $"{g.Max(x => x.Tolerance):E0}"), g.Count(x => !x.Passed).ToString());
            console.WriteLine($"device {dev.Name} ({dev.Description}), seed {s}");
            console.Write(table);
            foreach (var f in results.Where(x => !x.Passed).Take(10))
                output.Out.WriteLine($"FAILED {f.Kernel} {f.Shape}: rel. L2 {f.RelL2:E2}");
            int failed = results.Count(x => !x.Passed);
            output.Out.WriteLine($"{results.Count - failed} passed, {failed} failed");
            return failed == 0 ? 0 : GpuAnomalyCli.ExitCheckFailed;
        });
        return cmd;
    }
}
