using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Bench;

/// <summary>
/// The channels-last depthwise conv (window_vit's Mix-FFN: [B, 14x14, 128], 3x3, +GELU) and the standalone GELU on the
/// `cpu` device. The model-level comparison is `onnx` (tools/bench/onnx_vs_ort.sh).
/// Quick: dotnet run -c Release --project bench/GpuAnomaly.Bench -- dwconv-cpu [reps]
/// </summary>
public class DwConvGeluBench
{
    private float[] _x = null!, _w = null!, _b = null!, _y = null!;

    [Params(1, 64)]
    public int Batch { get; set; }

    [Params(false, true)]
    public bool FusedGelu { get; set; }

    private DwConvParams P => DwConvParams.Create(Batch, 14, 14, 128, 3, true, FusedGelu ? Epilogue.Gelu : Epilogue.None);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        var p = P;
        _x = Conv2dBench.Random(rng, (int)p.OutputElements);
        _w = Conv2dBench.Random(rng, 128 * 9);
        _b = Conv2dBench.Random(rng, 128);
        _y = new float[p.OutputElements];
    }

    [Benchmark]
    public void DwConv() => DwConvCpu.Forward(P, _x, _w, _b, _y);

    [Benchmark]
    public void Gelu() => GeluCpu.Forward(_x, _y);

    /// <summary>`dwconv-cpu [reps]`: median and minimum after a warm-up; GFLOP/s for the conv (2 k^2 per output), GB/s for GELU.</summary>
    public static void Quick(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 200;
        Console.WriteLine($"dwconv / gelu cpu (GpuAnomaly), {Environment.ProcessorCount} threads, median of {reps}");
        foreach (int batch in new[] { 1, 64 })
            foreach (bool gelu in new[] { false, true })
            {
                var bench = new DwConvGeluBench { Batch = batch, FusedGelu = gelu };
                bench.Setup();
                var p = bench.P;
                var (ms, min) = QuickTimer.Measure(reps, bench.DwConv);
                Console.WriteLine($"dwconv [{batch}, 14x14, 128] 3x3{(gelu ? " +gelu" : ""),-7} {ms,8:F4} ms {2.0 * p.OutputElements * 9 / ms / 1e6,7:F1} GFLOP/s (min {min:F4} ms)");
                if (!gelu) continue;
                (ms, min) = QuickTimer.Measure(reps, bench.Gelu);
                Console.WriteLine($"gelu   {p.OutputElements} floats{"",12} {ms,8:F4} ms {8.0 * p.OutputElements / ms / 1e6,7:F1} GB/s     (min {min:F4} ms)");
            }
    }
}
