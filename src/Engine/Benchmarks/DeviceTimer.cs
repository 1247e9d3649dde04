using System.Diagnostics;
using ILGPU.Runtime;

namespace GpuAnomaly.Engine.Benchmarks;

/// <summary>One timed kernel: median over samples, with the work it does.</summary>
public sealed record BenchmarkResult(string Device, string Kernel, string Shape, double MedianMs, double MinMs, double MaxMs,
    int Samples, int LaunchesPerSample, double Flops, double Bytes)
{
    public double GFlops => Flops / (MedianMs * 1e6);
    public double GBps => Bytes / (MedianMs * 1e6);
}

/// <summary>
/// Times work on a device the way the kernel lab reports it: warm-up launches first (JIT and
/// module load stay out), then samples of R back-to-back launches between two device-side
/// markers (CUDA events on ILGPU devices, so host launch overhead only counts when the GPU
/// starves), R chosen so a sample lasts at least <c>minSampleMs</c>; the median sample / R
/// is the result.
/// </summary>
public static class DeviceTimer
{
    public static BenchmarkResult Time(Device device, string kernel, string shape, double flops, double bytes, Action run,
        int warmup = 3, int samples = 15, double minSampleMs = 2.0)
    {
        for (int i = 0; i < warmup; i++) run();
        device.Synchronize();

        double once = Sample(device, run, 1);
        int launches = (int)Math.Clamp(Math.Ceiling(minSampleMs / Math.Max(once, 1e-4)), 1, 10_000);
        var times = new double[samples];
        for (int s = 0; s < samples; s++) times[s] = Sample(device, run, launches) / launches;
        Array.Sort(times);
        return new BenchmarkResult(device.Name, kernel, shape, times[samples / 2], times[0], times[^1], samples, launches, flops, bytes);
    }

    private static double Sample(Device device, Action run, int launches)
    {
        if (device is IlgpuDevice gpu)
        {
            var stream = gpu.Accelerator.DefaultStream;
            using var start = stream.AddProfilingMarker();
            for (int i = 0; i < launches; i++) run();
            using var end = stream.AddProfilingMarker();
            end.Synchronize();
            return end.MeasureFrom(start).TotalMilliseconds;
        }
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < launches; i++) run();
        device.Synchronize();
        return sw.Elapsed.TotalMilliseconds;
    }
}
