using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Peak;

/// <summary>
/// Kernels that measure a device's ceilings, so that benchmarks report a fraction of a
/// measured peak rather than of a datasheet number: fp32 FMA throughput and copy bandwidth.
/// </summary>
public sealed class PeakKernels
{
    /// <summary>FMAs per thread per launch of <see cref="Fma"/>: 8 chains x 4 per step x Steps.</summary>
    public const int Steps = 1024;
    public const int FmasPerThread = 8 * 4 * Steps;

    private readonly Action<Index1D, ArrayView<float>, float> _fma;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _copy;

    public PeakKernels(Accelerator accelerator)
    {
        _fma = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FmaKernel);
        _copy = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(CopyKernel);
    }

    /// <summary>threads x <see cref="FmasPerThread"/> fused multiply-adds; writes one float per thread so nothing is optimised away.</summary>
    public void Fma(int threads, ArrayView<float> sink, float seed) => _fma(threads, sink, seed);

    /// <summary>dst = src with float4-free scalar loads: the bandwidth a plain coalesced kernel reaches.</summary>
    public void Copy(ArrayView<float> src, ArrayView<float> dst) => _copy((int)Math.Min(src.Length, dst.Length), src, dst);

    // Eight independent chains hide the FMA latency; the step is unrolled by hand (ILGPU 1.5.3 does not unroll).
    private static void FmaKernel(Index1D i, ArrayView<float> sink, float seed)
    {
        float m = 0.999f, c = seed * 1e-3f;
        float a0 = i * 1e-7f, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
        for (int s = 0; s < Steps; s++)
        {
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
        }
        sink[i % sink.Length] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    }

    private static void CopyKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];
}
