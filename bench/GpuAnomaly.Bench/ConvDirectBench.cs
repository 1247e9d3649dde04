using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Bench;

/// <summary>
/// `conv-direct [reps]`: Conv2dCpu's Winograd path (where it applies) and direct path against its GEMM paths (im2col
/// or padded input, the other paths turned off) on the Uninformed Students layers that dominate the whole-model rows of docs/PERFORMANCE.md
/// (default model at batch 1 and 8, the width-128 model at 64x64), packed weights as the engine runs them.
/// </summary>
internal static class ConvDirectBench
{
    private static Conv2dParams Layer(int n, int cin, int h, int cout, int k, int dil = 1, int padLo = 0, int padHi = 0)
    {
        var p = Conv2dParams.Create(n, cin, h, h, cout, k, k, dilation: dil, act: Activation.LeakyRelu, slope: 0.005f);
        p.PadTop = p.PadLeft = padLo;
        p.PadBottom = p.PadRight = padHi;
        return p;
    }

    public static readonly (string Name, Conv2dParams P)[] Shapes =
    [
        ("us p65.0 b8 1->16 5x5", Layer(8, 1, 28, 16, 5, 1, 32, 27)),
        ("us p17.1 b8 16->32 5x5", Layer(8, 16, 39, 32, 5)),
        ("us p17.3 b8 32->128 4x4", Layer(8, 32, 31, 128, 4)),
        ("us p65.2 b8 16->16 5x5 d2", Layer(8, 16, 82, 16, 5, 2)),
        ("us p65.4 b1 16->16 5x5 d4", Layer(1, 16, 72, 16, 5, 4)),
        ("w128 p17.2 256->256 5x5", Layer(1, 256, 71, 256, 5)),
        ("w128 p33.4 256->256 2x2 d4", Layer(1, 256, 80, 256, 2, 4)),
        ("w128 p65.2 128->128 5x5 d2", Layer(1, 128, 118, 128, 5, 2)),
        ("w128 p65.4 128->128 5x5 d4", Layer(1, 128, 108, 128, 5, 4)),
        ("w128 p65.6 128->256 4x4 d8", Layer(1, 128, 88, 256, 4, 8)),
        ("w128 p33.2 128->256 5x5 d2", Layer(1, 128, 90, 256, 5, 2)),
        ("w128 p33.5 256->128 4x4 d4", Layer(1, 256, 76, 128, 4, 4)),
    ];

    public static void Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 20;
        Console.WriteLine($"conv2d cpu direct path vs GEMM path, {Environment.ProcessorCount} threads, packed weights, median of {reps}");
        foreach (var (name, p) in Shapes)
        {
            if (Environment.GetEnvironmentVariable("CONV_ONLY") is { } only && !name.Contains(only)) continue;
            var rng = new Random(1);
            var x = Conv2dBench.Random(rng, p.InputElements);
            var w = Conv2dBench.Random(rng, p.WeightElements);
            var b = Conv2dBench.Random(rng, p.COut);
            var y = new float[p.OutputElements];
            // GFLOP/s count the direct convolution's flops for every path (Winograd's: its equivalent rate).
            foreach (string path in Conv2dCpu.UsesWinograd(p) ? new[] { "winograd", "direct", "gemm" } : ["direct", "gemm"])
            {
                Conv2dCpu.DisableWinograd = path != "winograd";
                Conv2dCpu.DisableDirect = path == "gemm";
                try
                {
                    using var packed = Conv2dCpu.PackWeights(p, w);
                    var (ms, min) = QuickTimer.Measure(reps, () => Conv2dCpu.Forward(p, x, packed, b, y));
                    Console.WriteLine($"{name,-30} {path,-8} {ms,9:F3} ms {p.Flops / ms / 1e6,7:F1} GFLOP/s   (min {min:F3} ms)");
                }
                finally
                {
                    Conv2dCpu.DisableDirect = false;
                    Conv2dCpu.DisableWinograd = false;
                }
            }
        }
    }
}
