using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Bench;

/// <summary>
/// The long-run check (docs/ROBUSTNESS.md "Long runs"): many inferences through the library on one model and one
/// device, sampling memory every few inferences. Each sample forces a full collection first, so the live heap it
/// reads is what the run keeps (the sawtooth between collections says nothing about leaks). The verdict fits a line
/// to the live heap after the warm-up and bounds the RSS range there. `--inject-leak BYTES` keeps BYTES per inference
/// alive, to show that the verdict catches a leak.
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- soak [--inferences N] [--sample-every K]
///      [--model PATH] [--device cpu] [--inject-leak BYTES]
/// </summary>
internal static class SoakBench
{
    private const double SlopeBoundBytes = 1 << 20;  // live-heap growth per 100,000 inferences
    private const double RssBoundBytes = 8 << 20;    // RSS max - min after the warm-up
    private const double WarmupFraction = 0.1;

    private sealed record Sample(long Inferences, double Seconds, long LiveBytes, long HeapSizeBytes, long AllocatedBytes, long RssBytes, int PoolThreads);

    public static int Run(string[] args)
    {
        int n = 100_000, every = 1000, leak = 0, images = 8;
        string model = Path.Combine(AppContext.BaseDirectory, "models", "memory_bank_default.safetensors"), device = "cpu";
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--inferences": n = int.Parse(args[++i]); break;
                case "--sample-every": every = int.Parse(args[++i]); break;
                case "--inject-leak": leak = int.Parse(args[++i]); break;
                case "--model": model = args[++i]; break;
                case "--device": device = args[++i]; break;
                default: throw new ArgumentException($"soak: unknown option '{args[i]}' (--inferences, --sample-every, --model, --device, --inject-leak)");
            }
        if (n < 10 * every || every < 1) throw new ArgumentException($"soak: {n} inferences give fewer than 10 samples of {every}");

        using var dev = Device.Open(device);
        using var m = AnomalyModel.Load(model, dev, 1);
        var rng = new Random(1);
        var inputs = Enumerable.Range(0, images).Select(_ => Enumerable.Range(0, (int)m.InputShape.Elements).Select(_ => rng.NextSingle()).ToArray()).ToArray();
        var expected = inputs.Select(x => m.Score(x).ImageScores[0]).ToArray();
        var kept = new List<byte[]>();
        Console.WriteLine($"soak: {n} inferences of {Path.GetFileName(model)} ({m.Architecture}, input {m.InputShape}) on {dev.Name}, " +
                          $"{images} distinct images cycled, sample every {every} (after GC.Collect + WaitForPendingFinalizers + Collect)" +
                          (leak > 0 ? $", INJECTED LEAK {leak} bytes kept per inference" : ""));
        Console.WriteLine($"runtime {Environment.Version}, {Environment.ProcessorCount} logical cores (shared with other work: inferences/s is not a performance claim), " +
                          $"server GC {System.Runtime.GCSettings.IsServerGC}, started {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"{"inferences",10} {"elapsed_s",9} {"inf/s",7} {"live_MiB",9} {"heap_MiB",9} {"alloc_B/inf",11} {"rss_MiB",8} {"pool_threads",12}");

        var samples = new List<Sample> { Take(0, 0) };
        Print(samples[0], null);
        int mismatches = 0;
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 1; i <= n; i++)
        {
            var r = m.Score(inputs[i % images]);
            // Bitwise: the same image must give the same score on the 100,000th run as on the first.
            if (r.ImageScores[0] != expected[i % images]) mismatches++;
            if (leak > 0) kept.Add(new byte[leak]);
            if (i % every == 0)
            {
                samples.Add(Take(i, Stopwatch.GetElapsedTime(t0).TotalSeconds));
                Print(samples[^1], samples[^2]);
            }
        }
        GC.KeepAlive(kept);
        return Verdict(samples, n, mismatches);
    }

    private static Sample Take(long inferences, double seconds)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return new Sample(inferences, seconds, GC.GetTotalMemory(false), GC.GetGCMemoryInfo().HeapSizeBytes, GC.GetTotalAllocatedBytes(true), Rss(), ThreadPool.ThreadCount);
    }

    private static void Print(Sample s, Sample? previous)
    {
        string rate = previous is null || s.Seconds <= previous.Seconds ? "" : $"{(s.Inferences - previous.Inferences) / (s.Seconds - previous.Seconds):F0}";
        string alloc = previous is null ? "" : $"{(s.AllocatedBytes - previous.AllocatedBytes) / (double)(s.Inferences - previous.Inferences):F0}";
        Console.WriteLine($"{s.Inferences,10} {s.Seconds,9:F1} {rate,7} {Mib(s.LiveBytes),9:F3} {Mib(s.HeapSizeBytes),9:F3} {alloc,11} {Mib(s.RssBytes),8:F1} {s.PoolThreads,12}");
    }

    private static int Verdict(List<Sample> samples, int n, int mismatches)
    {
        var after = samples.Where(s => s.Inferences >= WarmupFraction * n).ToList();
        var (first, warm, last) = (samples[0], after[0], samples[^1]);
        double slope = Slope(after.Select(s => (double)s.Inferences).ToArray(), after.Select(s => (double)s.LiveBytes).ToArray());
        double per100k = slope * 100_000;
        long rssRange = after.Max(s => s.RssBytes) - after.Min(s => s.RssBytes);
        double allocPerInference = (last.AllocatedBytes - warm.AllocatedBytes) / (double)(last.Inferences - warm.Inferences);
        bool heapOk = per100k < SlopeBoundBytes, rssOk = rssRange < RssBoundBytes;
        Console.WriteLine();
        Console.WriteLine($"{"",16} {"live_MiB",9} {"heap_MiB",9} {"rss_MiB",8}");
        foreach (var (name, s) in new[] { ("start", first), ($"after warm-up ({warm.Inferences})", warm), ("end", last) })
            Console.WriteLine($"{name,-16} {Mib(s.LiveBytes),9:F3} {Mib(s.HeapSizeBytes),9:F3} {Mib(s.RssBytes),8:F1}");
        // The cpu kernels keep per-thread packing buffers (Workspace, pinned): the live heap steps up and down as the
        // thread pool adds and retires workers, bounded by the number of threads, so the thread count is printed beside it.
        Console.WriteLine($"after warm-up: live heap {Mib(after.Min(s => s.LiveBytes)):F3} to {Mib(after.Max(s => s.LiveBytes)):F3} MiB, " +
                          $"RSS {Mib(after.Min(s => s.RssBytes)):F1} to {Mib(after.Max(s => s.RssBytes)):F1} MiB, thread-pool threads {after.Min(s => s.PoolThreads)} to {after.Max(s => s.PoolThreads)}");
        Console.WriteLine($"inferences/s overall: {last.Inferences / last.Seconds:F0} ({last.Seconds:F0} s, sampling included)");
        Console.WriteLine($"allocated per inference after warm-up: {allocPerInference:F0} bytes (garbage and kept alike: the live heap says what stayed)");
        Console.WriteLine($"score mismatches against the first run of each image: {mismatches}");
        Console.WriteLine($"live-heap slope after warm-up: {slope:F3} bytes/inference = {per100k / (1 << 20):F3} MiB per 100k inferences " +
                          $"(bound < {SlopeBoundBytes / (1 << 20):F0} MiB per 100k): {(heapOk ? "ok" : "GROWING")}");
        Console.WriteLine($"RSS max - min after warm-up: {Mib(rssRange):F2} MiB (bound < {RssBoundBytes / (1 << 20):F0} MiB): {(rssOk ? "ok" : "GROWING")}");
        bool pass = heapOk && rssOk && mismatches == 0;
        Console.WriteLine($"VERDICT: {(pass ? "PASS" : "FAIL")}");
        return pass ? 0 : 1;
    }

    /// <summary>Least-squares slope of y on x.</summary>
    private static double Slope(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
        }
        return sxy / sxx;
    }

    /// <summary>VmRSS from /proc/self/status (kB); -1 where there is no /proc.</summary>
    private static long Rss()
    {
        if (!File.Exists("/proc/self/status")) return -1;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]) * 1024;
        return -1;
    }

    private static double Mib(long bytes) => bytes / (double)(1 << 20);
}
