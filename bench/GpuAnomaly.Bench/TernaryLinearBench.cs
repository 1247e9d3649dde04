using System.Diagnostics;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.Cpu;
using GpuAnomaly.Kernels.Ternary;

namespace GpuAnomaly.Bench;

/// <summary>
/// TernaryLinearCpu (A32, A8) against our float32 baselines at 4096x4096: a SIMD GEMV (<see cref="Fp32Gemv"/>,
/// W [N, K] row-major as nn.Linear holds it) for batch 1, <see cref="Sgemm"/> (x [M, K] times W^T [K, N]) for
/// batches. tools/bench/ternary_cpu_torch.py times torch.nn.functional.linear on the same shapes.
/// </summary>
public class TernaryLinearBench
{
    public const int N = 4096, K = 4096;

    [Params(1, 8, 32)]
    public int M { get; set; } = 1;

    private float[] _x = [], _w = [], _wt = [], _y = [], _scale = [1f], _bias = [];
    private uint[] _packed = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Conv2dBench.Random(rng, (long)M * K);
        _w = Conv2dBench.Random(rng, (long)N * K);
        var t = TernaryQuantizer.Quantize(_w, N, K, TernaryScale.Tensor);
        _packed = t.Pack();
        _scale = t.Scales;
        _bias = Conv2dBench.Random(rng, N);
        _wt = new float[(long)K * N];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) _wt[(long)k * N + n] = _w[(long)n * K + k];
        _y = new float[M * N];
    }

    [Benchmark(Baseline = true)]
    public void Fp32()
    {
        if (M == 1) Fp32Gemv.Forward(_w, N, K, _x, _y);
        else Sgemm.Multiply(M, N, K, _x, K, _wt, N, _y, N);
    }

    [Benchmark]
    public void TernaryA32() => TernaryLinearCpu.Forward(TernaryLinearParams.Create(M, N, K), _x, _packed, _scale, _bias, _y);

    [Benchmark]
    public void TernaryA8() =>
        TernaryLinearCpu.Forward(TernaryLinearParams.Create(M, N, K, activations: TernaryActivations.A8), _x, _packed, _scale, _bias, _y);

    /// <summary>`ternary-cpu [reps]`: median times, weight GB/s and the speedup over float32, without BenchmarkDotNet.</summary>
    public static void Quick(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 30;
        Console.WriteLine($"ternary linear cpu (GpuAnomaly), N=K={N}, {Environment.ProcessorCount} threads, " +
            $"avx512={Vector512.IsHardwareAccelerated}, median of {reps}");
        Console.WriteLine($"{"case",-16} {"median ms",10} {"min ms",9} {"weight GB/s",12} {"vs fp32",8}");
        foreach (int m in new[] { 1, 8, 32 })
        {
            var b = new TernaryLinearBench { M = m };
            b.Setup();
            double fp32 = Time($"M={m} fp32", reps, (long)N * K * 4, 0, b.Fp32);
            if (m == 1)
            {
                var bm = b;
                Time("M=1 fp32 sgemm", reps, (long)N * K * 4, fp32, () => Sgemm.Multiply(1, N, K, bm._x, K, bm._wt, N, bm._y, N));
            }
            Time($"M={m} ternary A32", reps, TernaryPacking.Bytes(N, K), fp32, b.TernaryA32);
            Time($"M={m} ternary A8", reps, TernaryPacking.Bytes(N, K), fp32, b.TernaryA8);
        }
    }

    private static double Time(string name, int reps, long weightBytes, double baselineMs, Action run)
    {
        var (ms, min) = QuickTimer.Measure(reps, run);
        string speedup = baselineMs > 0 ? $"{baselineMs / ms,7:F2}x" : "      -";
        Console.WriteLine($"{name,-16} {ms,10:F3} {min,9:F3} {weightBytes / ms / 1e6,12:F2} {speedup}");
        return ms;
    }
}

/// <summary>A plain float32 GEMV y = W x (W [N, K] row-major), threaded over row blocks, 4 rows per x load: the fp32 reference point.</summary>
internal static unsafe class Fp32Gemv
{
    public static void Forward(float[] w, int n, int k, float[] x, float[] y)
    {
        fixed (float* pw = w, px = x, py = y)
        {
            nint wa = (nint)pw, xa = (nint)px, ya = (nint)py;
            int rows = 64;
            Parallel.For(0, (n + rows - 1) / rows, b =>
            {
                int r1 = Math.Min(n, (b + 1) * rows);
                for (int r = b * rows; r < r1; r += 4) Rows4((float*)wa, (float*)xa, (float*)ya, k, r, Math.Min(4, r1 - r));
            });
        }
    }

    private static void Rows4(float* w, float* x, float* y, int k, int r, int count)
    {
        if (count < 4 || k % 16 != 0)
        {
            for (int i = 0; i < count; i++)
            {
                float s = 0;
                for (int j = 0; j < k; j++) s += w[(long)(r + i) * k + j] * x[j];
                y[r + i] = s;
            }
            return;
        }
        float* w0 = w + (long)r * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int j = 0; j < k; j += 16)
        {
            var xv = Vector512.Load(x + j);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + j), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + j), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + j), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + j), xv, a3);
        }
        y[r] = Vector512.Sum(a0); y[r + 1] = Vector512.Sum(a1); y[r + 2] = Vector512.Sum(a2); y[r + 3] = Vector512.Sum(a3);
    }
}
