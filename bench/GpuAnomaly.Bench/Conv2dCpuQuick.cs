using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Bench;

/// <summary>
/// `conv-cpu [reps]`: a quick timing of Conv2dCpu over <see cref="Conv2dBench.Shapes"/> (warm-up, then the
/// median and the minimum of many runs), printed in the same format as tools/bench/conv_cpu_vs_torch.py for a side-by-side look.
/// </summary>
internal static class Conv2dCpuQuick
{
    private static readonly CpuDevice Device = new();

    private static void Time(string name, Conv2dParams p, int reps, Action forward)
    {
        var (ms, min) = QuickTimer.Measure(reps, forward);
        Console.WriteLine($"{name,-24} {ms,9:F3} ms {p.Flops / ms / 1e6,8:F1} GFLOP/s   (min {min:F3} ms {p.Flops / min / 1e6:F1} GFLOP/s)");
    }

    public static void Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 30;
        Console.WriteLine($"conv2d cpu (GpuAnomaly), {Environment.ProcessorCount} threads, median of {reps}");
        foreach (var (name, p) in Conv2dBench.Shapes)
        {
            var rng = new Random(1);
            var x = Conv2dBench.Random(rng, p.InputElements);
            var w = Conv2dBench.Random(rng, p.WeightElements);
            var b = Conv2dBench.Random(rng, p.COut);
            var y = new float[p.OutputElements];
            using var packed = Conv2dCpu.PackWeights(p, w);
            // "span": weights packed on every call; "packed": packed once (Conv2dCpu.PackWeights), as the engine does.
            Time(name + " span", p, reps, () => Conv2dCpu.Forward(p, x, w, b, y));
            Time(name, p, reps, () => Conv2dCpu.Forward(p, x, packed, b, y));
            // "engine": CpuDevice.Conv2d with constant weights, as a graph runs it (packed once, cached).
            using var tx = Device.FromHost(x, new Shape(p.N, p.CIn, p.H, p.W));
            using var tw = Device.FromHost(w, new Shape(p.COut, p.CInPerGroup, p.KH, p.KW)).MarkConstant();
            using var tb = Device.FromHost(b, new Shape(p.COut));
            using var ty = Device.Allocate(new Shape(p.N, p.COut, p.OutH, p.OutW));
            Time(name + " engine", p, reps, () => Device.Conv2d(p, tx, tw, tb, ty));
        }
        foreach (var (m, n, k) in new[] { (256, 1024, 3200), (512, 512, 512) })
        {
            var rng = new Random(1);
            var a = Conv2dBench.Random(rng, (long)m * k);
            var b = Conv2dBench.Random(rng, (long)k * n);
            var c = new float[m * n];
            var (ms, min) = QuickTimer.Measure(reps, () => Kernels.Cpu.Sgemm.Multiply(m, n, k, a, k, b, n, c, n));
            Console.WriteLine($"{$"sgemm {m}x{n}x{k}",-24} {ms,9:F3} ms {2.0 * m * n * k / ms / 1e6,8:F1} GFLOP/s   (min {min:F3} ms {2.0 * m * n * k / min / 1e6:F1} GFLOP/s)");
        }
    }
}
