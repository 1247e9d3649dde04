using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.Attention;

namespace GpuAnomaly.Bench;

/// <summary>
/// Fused vs unfused window attention on the cpu: Swin's stage-1 shape (56x56 tokens, ws 7, head dim 32, 3 heads,
/// batch 1), unshifted and shifted with the relative position bias.
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- --filter '*WindowAttentionBench*'
/// Quick: dotnet run -c Release --project bench/GpuAnomaly.Bench -- attention-cpu [reps]
/// </summary>
public class WindowAttentionBench
{
    private float[] _qkv = null!, _pad = null!, _bias = null!, _y = null!;

    [Params(0, 3)]
    public int Shift { get; set; }

    private WindowAttentionParams P => WindowAttentionParams.Window(1, 56, 56, 3, 32, 7, Shift);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        var p = P;
        _qkv = Conv2dBench.Random(rng, p.QkvElements);
        _pad = Conv2dBench.Random(rng, 3 * p.Channels);
        _bias = Conv2dBench.Random(rng, p.BiasElements);
        _y = new float[p.OutputElements];
    }

    [Benchmark(Baseline = true)]
    public void Unfused() => WindowAttentionUnfused.Forward(P, _qkv, _pad, _bias, _y);

    [Benchmark]
    public void Fused() => WindowAttentionCpu.Forward(P, _qkv, _pad, _bias, _y);

    /// <summary>`attention-cpu [reps]`: median and minimum of many runs after a half-second warm-up, with GFLOP/s (4 G^2 d per window and head).</summary>
    public static void Quick(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 50;
        Console.WriteLine($"window attention cpu (GpuAnomaly), {Environment.ProcessorCount} threads, median of {reps}");
        foreach (int shift in new[] { 0, 3 })
        {
            var bench = new WindowAttentionBench { Shift = shift };
            bench.Setup();
            var p = bench.P;
            Time($"unfused {p}", p.Flops, reps, bench.Unfused);
            Time($"fused   {p}", p.Flops, reps, bench.Fused);
        }
        foreach (var p in new[] { WindowAttentionParams.Sparse(1, 28, 28, 4, 64, 2), WindowAttentionParams.Sparse(1, 28, 28, 4, 64, 1) })
        {
            var rng = new Random(1);
            var qkv = Conv2dBench.Random(rng, p.QkvElements);
            var y = new float[p.OutputElements];
            Time($"unfused {p}", p.Flops, reps, () => WindowAttentionUnfused.Forward(p, qkv, [], [], y));
            Time($"fused   {p}", p.Flops, reps, () => WindowAttentionCpu.Forward(p, qkv, [], [], y));
        }
    }

    private static void Time(string name, double flops, int reps, Action forward)
    {
        var (ms, min) = QuickTimer.Measure(reps, forward);
        Console.WriteLine($"{name,-64} {ms,8:F3} ms {flops / ms / 1e6,7:F1} GFLOP/s   (min {min:F3} ms)");
    }
}
