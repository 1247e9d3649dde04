using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Peak;

namespace GpuAnomaly.Engine.Benchmarks;

/// <summary>A device's measured ceilings: fp32 FMA throughput and copy bandwidth (bytes read + written).</summary>
public sealed record DevicePeaks(double Fp32GFlops, double CopyGBps)
{
    /// <param name="quick">Small buffers and few samples: a smoke test, not a measurement.</param>
    public static DevicePeaks Measure(Device device, bool quick = false) => device switch
    {
        IlgpuDevice gpu => MeasureIlgpu(gpu),
        _ => MeasureCpu(device, quick),
    };

    private static DevicePeaks MeasureIlgpu(IlgpuDevice gpu)
    {
        var kernels = new PeakKernels(gpu.Accelerator);
        bool emulator = gpu.Name != "cuda";
        int threads = emulator ? 1024 : gpu.Multiprocessors * 2048 * 4;
        using var sink = gpu.Allocate(new Shape(1024));
        var fma = DeviceTimer.Time(gpu, "peak-fma", $"{threads} threads", 2.0 * threads * PeakKernels.FmasPerThread, 0,
            () => kernels.Fma(threads, sink.View<float>(), 1f), warmup: 2, samples: emulator ? 3 : 9);

        long n = emulator ? 1 << 16 : 1L << 28; // 1 GiB per buffer on the GPU: far beyond L2
        using var a = gpu.Allocate(new Shape((int)n));
        using var b = gpu.Allocate(new Shape((int)n));
        var copy = DeviceTimer.Time(gpu, "peak-copy", $"{n} floats", 0, 8.0 * n,
            () => kernels.Copy(a.View<float>(), b.View<float>()), warmup: 2, samples: emulator ? 3 : 9);
        // The driver's device-to-device copy is often faster than a plain kernel: the ceiling is the better of the two.
        var memcpy = DeviceTimer.Time(gpu, "peak-memcpy", $"{n} floats", 0, 8.0 * n,
            () => ILGPU.Runtime.ArrayViewExtensions.CopyTo(a.View<float>(), gpu.Accelerator.DefaultStream, b.View<float>()), warmup: 2, samples: emulator ? 3 : 9);
        return new DevicePeaks(fma.GFlops, Math.Max(copy.GBps, memcpy.GBps));
    }

    private static DevicePeaks MeasureCpu(Device cpu, bool quick)
    {
        int threads = Environment.ProcessorCount;
        int steps = quick ? 1 << 10 : 1 << 20; // ~1 ms per call: thread wake-up stays out of the rate
        bool wide = Vector512.IsHardwareAccelerated;
        double flops = 2.0 * threads * steps * (wide ? 12 * Vector512<float>.Count : 8 * Vector256<float>.Count);
        var fma = DeviceTimer.Time(cpu, "peak-fma", $"{threads} threads", flops, 0,
            () => Parallel.For(0, threads, t => { if (wide) FmaChains512(steps, t); else FmaChains(steps, t); }),
            warmup: 2, samples: 7, minSampleMs: 20);

        long n = quick ? 1L << 20 : 1L << 26; // 256 MiB per buffer
        var src = GC.AllocateUninitializedArray<float>((int)n);
        var dst = GC.AllocateUninitializedArray<float>((int)n);
        src.AsSpan().Fill(1f);
        int chunks = threads * 4;
        var copy = DeviceTimer.Time(cpu, "peak-copy", $"{n} floats", 0, 8.0 * n, () => Parallel.For(0, chunks, c =>
        {
            long lo = n * c / chunks, hi = n * (c + 1) / chunks;
            // One read stream and one write stream through the same vectorized library path as our
            // elementwise kernels. Kernels with more read streams than writes (Add) can exceed it on CPUs.
            System.Numerics.Tensors.TensorPrimitives.Negate(src.AsSpan((int)lo, (int)(hi - lo)), dst.AsSpan((int)lo, (int)(hi - lo)));
        }), warmup: 2, samples: 7, minSampleMs: 20);
        return new DevicePeaks(fma.GFlops, copy.GBps);
    }

    private static float FmaChains512(int steps, int seed)
    {
        var m = Vector512.Create(0.999f);
        var c = Vector512.Create(seed * 1e-3f);
        // 12 chains: enough to cover FMA latency x 2 pipes on current cores.
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0 + m, a2 = a1 + m, a3 = a2 + m, a4 = a3 + m, a5 = a4 + m,
            a6 = a5 + m, a7 = a6 + m, a8 = a7 + m, a9 = a8 + m, a10 = a9 + m, a11 = a10 + m;
        for (int s = 0; s < steps; s++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    private static float FmaChains(int steps, int seed)
    {
        var m = Vector256.Create(0.999f);
        var c = Vector256.Create(seed * 1e-3f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0 + m, a2 = a1 + m, a3 = a2 + m, a4 = a3 + m, a5 = a4 + m, a6 = a5 + m, a7 = a6 + m;
        for (int s = 0; s < steps; s++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c); a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c); a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c); a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c); a7 = Vector256.FusedMultiplyAdd(a7, m, c);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    }
}
