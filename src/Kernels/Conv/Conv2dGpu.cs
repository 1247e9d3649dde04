using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>Conv2d kernels for an ILGPU accelerator (CUDA or ILGPU's CPU emulator).</summary>
public sealed class Conv2dGpu
{
    private readonly Accelerator _accelerator;
    private readonly Action<Index1D, Conv2dParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _direct;
    private readonly Action<Index1D, Conv2dParams, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _directWide;
    private readonly Action<KernelConfig, Conv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemm;
    private readonly Action<KernelConfig, Conv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemmLarge;

    public Conv2dGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < Conv2dImplicitGemmKernel.Threads)
            throw new ArgumentException($"conv2d: the implicit-GEMM kernel needs {Conv2dImplicitGemmKernel.Threads} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
        _accelerator = accelerator;
        _direct = accelerator.LoadAutoGroupedStreamKernel<Index1D, Conv2dParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Conv2dDirectKernel.Kernel);
        _directWide = accelerator.LoadAutoGroupedStreamKernel<Index1D, Conv2dParams, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Conv2dDirectWideKernel.Kernel);
        _gemm = accelerator.LoadStreamKernel<Conv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Conv2dImplicitGemmKernel.Kernel);
        _gemmLarge = accelerator.LoadStreamKernel<Conv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Conv2dImplicitGemmLargeKernel.Kernel);
    }

    /// <summary>
    /// The fastest applicable kernel for <paramref name="p"/>: the implicit GEMM, unless a conv
    /// group has fewer than 6 output channels (depthwise and near-depthwise). The GEMM's time
    /// hardly depends on M below one 64-row tile while the direct kernel's grows with it; on an
    /// H100 (N=4, 3x3) the direct kernel won at M = 1, 2 and 4
    /// (0.07 vs 0.54 ms, 0.067 vs 0.24 ms, 0.056 vs 0.089 ms) and the GEMM won at M = 8, 12, 16,
    /// 32 and 64 even with K as small as 9 (e.g. M = 8: 0.040 vs 0.051 ms; M = 64, K = 9:
    /// 0.031 vs 0.087 ms). The direct kernel also covers shapes whose grid the GEMM cannot launch.
    /// The direct path runs <see cref="DirectWide"/> (1.6-2x faster than <see cref="Direct"/> on
    /// the H100 suite at stride 1; the threshold of 6 was measured with Direct and may move up),
    /// large GEMMs run <see cref="ImplicitGemmLarge"/> (see <see cref="PrefersLarge"/>).
    /// </summary>
    public void Forward(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        if (PrefersDirect(p))
        {
            if (DirectWideFits(p)) DirectWide(p, x, w, bias, y);
            else Direct(p, x, w, bias, y);
        }
        else if (PrefersLarge(p)) ImplicitGemmLarge(p, x, w, bias, y);
        else ImplicitGemm(p, x, w, bias, y);
    }

    /// <summary>
    /// True when <see cref="Forward"/> runs <see cref="ImplicitGemmLarge"/>: at least one full
    /// 128-row tile per group, K of at least 256, and enough 128x128 tiles for several waves on a
    /// large GPU (fewer tiles leave SMs idle, where the 64x64 kernel's four times as many do not).
    /// Measured on an H100 (132 SMs): 5x5 128->256 at 266x266 (1074 tiles, K = 3200) 3.07 vs
    /// 3.75 ms for the 64x64 kernel; the same conv at 140x140 dilated (274 tiles) 1.08 vs 1.04 ms;
    /// and the large kernel lost on every layer with M = 64 or K &lt;= 256 (1.3-1.7x slower).
    /// </summary>
    public static bool PrefersLarge(in Conv2dParams p)
    {
        if (PrefersDirect(p) || !ImplicitGemmLargeFits(p) || p.COutPerGroup < LargeMinM) return false;
        long tiles = ((long)p.N * p.OutH * p.OutW + Conv2dImplicitGemmLargeKernel.BN - 1) / Conv2dImplicitGemmLargeKernel.BN
            * ((p.COutPerGroup + Conv2dImplicitGemmLargeKernel.BM - 1) / Conv2dImplicitGemmLargeKernel.BM) * p.Groups;
        return tiles >= LargeMinTiles && (long)p.CInPerGroup * p.KH * p.KW >= LargeMinK;
    }

    private const int LargeMinM = 128, LargeMinTiles = 512, LargeMinK = 256;

    /// <summary>True when <see cref="Forward"/> runs a direct kernel (<see cref="DirectWide"/>, else <see cref="Direct"/>) for <paramref name="p"/>.</summary>
    public static bool PrefersDirect(in Conv2dParams p) => p.COutPerGroup < 6 || !ImplicitGemmFits(p);

    /// <summary>One thread per output element; documents the semantics.</summary>
    public void Direct(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        Check("direct", p, x, w, bias, y);
        _direct((int)p.OutputElements, p, x, w, bias, y);
    }

    /// <summary>
    /// The direct kernel with four adjacent outputs of a row per thread: what <see cref="Forward"/>
    /// runs for depthwise and near-depthwise convs. H100, depthwise 3x3 128ch 56x56 b8:
    /// 0.0315 ms vs 0.061 ms for <see cref="Direct"/> (PyTorch fp32 cuDNN: 0.032 ms).
    /// </summary>
    public void DirectWide(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        Check("direct_wide", p, x, w, bias, y);
        if (!DirectWideFits(p))
            throw new ArgumentException($"conv2d direct_wide: the thread count exceeds 2^31 ({p})");
        int owq = (p.OutW + Conv2dDirectWideKernel.Outputs - 1) / Conv2dDirectWideKernel.Outputs;
        _directWide(p.N * p.COut * p.OutH * owq, p, owq, x, w, bias, y);
    }

    private static bool DirectWideFits(in Conv2dParams p) =>
        (long)p.N * p.COut * p.OutH * ((p.OutW + Conv2dDirectWideKernel.Outputs - 1) / Conv2dDirectWideKernel.Outputs) <= int.MaxValue;

    /// <summary>
    /// The implicit GEMM with 128x128 tiles, K-step 8 and 8x8 outputs per thread, for large
    /// GEMMs (see <see cref="PrefersLarge"/>).
    /// </summary>
    public void ImplicitGemmLarge(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        Check("implicit_gemm_large", p, x, w, bias, y);
        if (!ImplicitGemmLargeFits(p))
            throw new ArgumentException($"conv2d implicit_gemm_large: groups x output-channel tiles exceed the grid's 65535 limit ({p})");
        var d = ImplicitGemmShape.Create(p, Conv2dImplicitGemmLargeKernel.BM, Conv2dImplicitGemmLargeKernel.BK);
        int nTiles = (d.N + Conv2dImplicitGemmLargeKernel.BN - 1) / Conv2dImplicitGemmLargeKernel.BN;
        var config = new KernelConfig(new Index3D(nTiles, d.MTiles * p.Groups, 1), new Index3D(Conv2dImplicitGemmLargeKernel.Threads, 1, 1));
        _gemmLarge(config, p, d, x, w, bias, y);
    }

    private static bool ImplicitGemmLargeFits(in Conv2dParams p)
    {
        long mTiles = (p.COutPerGroup + Conv2dImplicitGemmLargeKernel.BM - 1) / Conv2dImplicitGemmLargeKernel.BM;
        return mTiles * p.Groups <= 65535 && (long)p.N * p.OutH * p.OutW <= int.MaxValue - Conv2dImplicitGemmLargeKernel.BN;
    }

    /// <summary>Tiled shared-memory implicit GEMM (64x64 tiles, K-step 16, 4x4 per thread).</summary>
    public void ImplicitGemm(in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        Check("implicit_gemm", p, x, w, bias, y);
        if (!ImplicitGemmFits(p))
            throw new ArgumentException($"conv2d implicit_gemm: groups x output-channel tiles exceed the grid's 65535 limit ({p})");
        var d = ImplicitGemmShape.Create(p);
        int nTiles = (d.N + Conv2dImplicitGemmKernel.BN - 1) / Conv2dImplicitGemmKernel.BN;
        var config = new KernelConfig(new Index3D(nTiles, d.MTiles * p.Groups, 1), new Index3D(Conv2dImplicitGemmKernel.Threads, 1, 1));
        _gemm(config, p, d, x, w, bias, y);
    }

    private static bool ImplicitGemmFits(in Conv2dParams p)
    {
        long mTiles = (p.COutPerGroup + Conv2dImplicitGemmKernel.BM - 1) / Conv2dImplicitGemmKernel.BM;
        // Column indices run up to the next multiple of BN, which must not overflow an int.
        return mTiles * p.Groups <= 65535 && (long)p.N * p.OutH * p.OutW <= int.MaxValue - Conv2dImplicitGemmKernel.BN;
    }

    private static void Check(string kernel, in Conv2dParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != p.WeightElements || y.Length != p.OutputElements
            || (p.HasBias != 0 && bias.Length != p.COut))
            throw new ArgumentException(
                $"conv2d {kernel}: views have x={x.Length}, w={w.Length}, bias={bias.Length}, y={y.Length} elements; " +
                $"{p} needs x={p.InputElements}, w={p.WeightElements}, bias={(p.HasBias != 0 ? p.COut : 0)}, y={p.OutputElements}");
    }
}
