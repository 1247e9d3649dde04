using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.Vim;

namespace GpuAnomaly.Bench;

/// <summary>
/// ViM scoring on the cpu: the fused kernel (logits, residual norm, virtual logit and softmax in one pass
/// over the head and the basis, four samples per pass) against the unfused sequence (GEMV, centering,
/// projection, norm, softmax as separate passes with stored intermediates). K = N - D with the
/// official D (N/2 below 768, 512 from 768): 2 S (C + K) N flops.
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- --filter '*VimBench*' --job short
/// Quick: dotnet run -c Release --project bench/GpuAnomaly.Bench -- vim-cpu [reps]
/// </summary>
public class VimBench
{
    private VimParams _p;
    private float[] _x = [], _w = [], _b = [], _o = [], _rt = [], _y = [];
    private VimUnfused _unfused = null!;

    /// <summary>"S N C".</summary>
    [Params("256 512 10", "256 1024 1000")]
    public string Case { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var d = Case.Split(' ').Select(int.Parse).ToArray();
        int n = d[1];
        int principal = n >= 2048 ? 1000 : n >= 768 ? 512 : n / 2; // VimFit.DefaultPrincipalDim (Models is not referenced here)
        _p = VimParams.Create(d[0], n, d[2], n - principal, 0.5f);
        var rng = new Random(1);
        float[] Random(long count, float scale)
        {
            var a = new float[count];
            for (long i = 0; i < count; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
            return a;
        }
        _x = Random(_p.FeatureElements, 1f);
        _w = Random(_p.WeightElements, 1f / MathF.Sqrt(n));
        _b = Random(_p.C, 1f);
        _o = Random(n, 0.5f);
        _rt = Random(_p.BasisElements, 1f / MathF.Sqrt(n));
        _y = new float[_p.OutputElements];
        _unfused = new VimUnfused(_p);
    }

    [Benchmark]
    public void Fused() => VimCpu.Forward(_p, _x, _w, _b, _o, _rt, _y);

    [Benchmark(Baseline = true)]
    public void Unfused() => _unfused.Forward(_x, _w, _b, _o, _rt, _y);

    public static void Quick(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 30;
        Console.WriteLine($"ViM scoring cpu (GpuAnomaly), {Environment.ProcessorCount} threads, median of {reps}");
        Console.WriteLine($"{"case",-26} {"median ms",10} {"samples/s",12} {"GFLOP/s",8} {"vs unfused",10}");
        foreach (var c in args.Length > 1 ? args[1..] : new[] { "256 512 10", "256 1024 1000" })
        {
            var b = new VimBench { Case = c };
            b.Setup();
            double flops = 2.0 * b._p.S * (b._p.C + b._p.ResidualDim) * b._p.N;
            string name = $"S{b._p.S} N{b._p.N} C{b._p.C} K{b._p.ResidualDim}";
            double unfused = Time($"{name} unfused", reps, b._p.S, flops, 0, b.Unfused);
            Time($"{name} fused", reps, b._p.S, flops, unfused, b.Fused);
        }
    }

    private static double Time(string name, int reps, int samples, double flops, double baselineMs, Action run)
    {
        var (ms, min) = QuickTimer.Measure(reps, run, warmupMs: 1000); // past tiered JIT's promotion of the unfused passes
        string speedup = baselineMs > 0 ? $"{baselineMs / ms,9:F2}x" : "         -";
        Console.WriteLine($"{name,-26} {ms,10:F3} {samples / ms * 1e3,12:F0} {flops / ms / 1e6,8:F2} {speedup}");
        return ms;
    }
}
