using GpuAnomaly.Kernels.Conv;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// Ternary Conv2d (<see cref="TernaryConv2dParams"/>) for an ILGPU accelerator: an implicit GEMM
/// decoding the packed weight words into shared memory (<see cref="TernaryConv2dKernel"/>). A8 first
/// quantizes each image (one absmax scale per image) into an owned, growable scratch of
/// x's size plus s [N]; buffers replaced by larger ones are kept until <see cref="Dispose"/>
/// because queued kernels may still read them. Launches go to the default stream, unsynchronized.
/// Not thread-safe.
/// </summary>
public sealed class TernaryConv2dGpu : IDisposable
{
    /// <summary>A8 sums in float32 are exact integers while 128 K &lt; 2^24.</summary>
    public const int A8MaxK = (1 << 24) / 128 - 1;

    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, TernaryConv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int> _gemm;
    private readonly Action<KernelConfig, int, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _quantize;
    private readonly List<MemoryBuffer> _retired = [];
    private MemoryBuffer1D<float, Stride1D.Dense>? _xq, _s;

    public TernaryConv2dGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < TernaryConv2dKernel.Threads)
            throw new ArgumentException($"ternary_conv2d: the implicit-GEMM kernel needs {TernaryConv2dKernel.Threads} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
        _accelerator = accelerator;
        _gemm = accelerator.LoadStreamKernel<TernaryConv2dParams, ImplicitGemmShape, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(
            TernaryConv2dKernel.Kernel);
        _quantize = TernaryLinearGpu.LoadQuantize(accelerator);
    }

    /// <summary>y [N, COut, OutH, OutW] = act(gamma * conv(x, W_t) + bias) (A8: acc * gamma / s_image + bias).</summary>
    public void Forward(in TernaryConv2dParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        Check(p, x, packedW, scale, bias, y.Length, "y");
        Run(p, x, packedW, scale, bias, y, default);
    }

    /// <summary>
    /// A8's exact int32 accumulators [N, COut, OutH, OutW], for comparison with
    /// <see cref="TernaryConv2dReference.AccumulateA8"/>. Scale, bias and the activation are not applied.
    /// </summary>
    public void AccumulateA8(in TernaryConv2dParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<int> acc)
    {
        var a8 = p;
        a8.Activations = TernaryActivations.A8;
        a8.Conv.HasBias = 0;
        a8.ScalePerRow = 0;
        Check(a8, x, packedW, default, default, acc.Length, "acc", checkScale: false);
        Run(a8, x, packedW, default, default, default, acc);
    }

    private void Run(in TernaryConv2dParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y, ArrayView<int> acc)
    {
        var c = p.Conv;
        var d = ImplicitGemmShape.Create(c, TernaryConv2dKernel.BM, TernaryPacking.WeightsPerWord);
        long yTiles = (long)d.MTiles * c.Groups;
        if (yTiles > 65535 || (long)d.N > int.MaxValue - TernaryConv2dKernel.BN)
            throw new ArgumentException($"ternary_conv2d: groups x channel tiles exceed the grid's 65535 limit ({p})");
        var config = new KernelConfig(new Index3D((d.N + TernaryConv2dKernel.BN - 1) / TernaryConv2dKernel.BN, (int)yTiles, 1),
            new Index3D(TernaryConv2dKernel.Threads, 1, 1));
        ArrayView<float> input = x, s = default;
        if (p.Activations == TernaryActivations.A8)
        {
            if (p.K > A8MaxK)
                throw new ArgumentException($"ternary_conv2d A8: K={p.K} above {A8MaxK} would make the float32 sums inexact ({p})");
            input = Grow(ref _xq, c.InputElements).View.SubView(0, c.InputElements);
            s = Grow(ref _s, c.N).View.SubView(0, c.N);
            _quantize(new KernelConfig(c.N, TernaryQuantizeKernel.Warps * _accelerator.WarpSize), c.CIn * c.H * c.W, 0, x, default, input, s, default);
        }
        _gemm(config, p, d, input, w, scale, bias, s, y, acc, acc.Length > 0 ? 1 : 0);
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Grow(ref MemoryBuffer1D<float, Stride1D.Dense>? buffer, long length)
    {
        if (buffer is not null && buffer.Length >= length) return buffer;
        if (buffer is not null) _retired.Add(buffer);
        buffer = _accelerator.Allocate1D<float>(Math.Max(length, buffer is null ? 0 : 2 * buffer.Length));
        return buffer;
    }

    private static void Check(in TernaryConv2dParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, long outLength, string outName, bool checkScale = true)
    {
        p.Validate();
        var c = p.Conv;
        if (x.Length != c.InputElements || w.Length != p.WeightWords || outLength != c.OutputElements
            || (checkScale && scale.Length != p.ScaleElements) || (c.HasBias != 0 && bias.Length != c.COut))
            throw new ArgumentException(
                $"ternary_conv2d: views have x={x.Length}, w={w.Length} words, scale={scale.Length}, bias={bias.Length}, {outName}={outLength}; " +
                $"{p} needs x={c.InputElements}, w={p.WeightWords}, scale={p.ScaleElements}, bias={(c.HasBias != 0 ? c.COut : 0)}, {outName}={c.OutputElements}");
    }

    public void Dispose()
    {
        _xq?.Dispose();
        _s?.Dispose();
        foreach (var b in _retired) b.Dispose();
        _retired.Clear();
        _xq = _s = null;
    }
}
