using ILGPU;
using ILGPU.Backends;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// TernaryLinear kernels for an ILGPU accelerator (CUDA or ILGPU's CPU emulator). Launches are
/// queued on the accelerator's default stream and never synchronized here.
/// A8 needs scratch for the quantized activations (packed int8 [M, Words(K) * 4], s [M], qsum [M]):
/// this class owns it and grows it on demand. Launches on one stream run in order, so reusing the
/// scratch between layers is safe; a buffer replaced by a larger one may still be read by queued
/// kernels, so it is kept until <see cref="Dispose"/>. Not thread-safe (one instance per device, used
/// by one executor).
/// </summary>
public sealed class TernaryLinearGpu : IDisposable
{
    /// <summary>Forward runs the GEMV for at most this many tokens, the tiled GEMM above.</summary>
    public const int GemvMaxTokens = 4;

    private readonly Accelerator _accelerator;
    private int _gemvWarps = TernaryGemvKernel.DefaultWarps;

    /// <summary>
    /// Warps per group of the GEMV (1 to <see cref="TernaryGemvKernel.MaxWarps"/>), i.e. its split of K. A tuning knob
    /// for benchmarks: the default stays until a GPU measures a better one.
    /// </summary>
    public int GemvWarps
    {
        get => _gemvWarps;
        set
        {
            if (value < 1 || value > TernaryGemvKernel.MaxWarps)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"ternary_linear gemv: 1 to {TernaryGemvKernel.MaxWarps} warps per group");
            _gemvWarps = value;
        }
    }
    private readonly Action<KernelConfig, TernaryLinearParams, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemvA32, _gemmA32;
    private readonly Action<KernelConfig, TernaryLinearParams, ArrayView<int>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int> _gemvA8, _gemmA8;
    private readonly Action<KernelConfig, int, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _quantize;
    private readonly List<MemoryBuffer> _retired = [];
    private MemoryBuffer1D<int, Stride1D.Dense>? _q, _qsum;
    private MemoryBuffer1D<float, Stride1D.Dense>? _s;

    public TernaryLinearGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < TernaryGemmKernel.Threads)
            throw new ArgumentException($"ternary_linear: the GEMM kernel needs {TernaryGemmKernel.Threads} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
        _accelerator = accelerator;
        _gemvA32 = accelerator.LoadStreamKernel<TernaryLinearParams, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TernaryGemvKernel.A32);
        _gemmA32 = accelerator.LoadStreamKernel<TernaryLinearParams, ArrayView<float>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TernaryGemmKernel.A32);
        _gemvA8 = WithDp4a(() => accelerator.LoadStreamKernel<TernaryLinearParams, ArrayView<int>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int>(TernaryGemvKernel.A8));
        _gemmA8 = WithDp4a(() => accelerator.LoadStreamKernel<TernaryLinearParams, ArrayView<int>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int>(TernaryGemmKernel.A8));
        _quantize = LoadQuantize(accelerator);
    }

    /// <summary>On CUDA the A8 kernels need the context's dp4a intrinsic; ILGPU's own error would not say where to get it.</summary>
    private static T WithDp4a<T>(Func<T> load)
    {
        try
        {
            return load();
        }
        catch (Exception e) when (e is NotSupportedIntrinsicException || e.InnerException is NotSupportedIntrinsicException)
        {
            throw new InvalidOperationException("ternary_linear A8: this ILGPU context has no dp4a intrinsic; create it with " +
                "Context.Create(b => b.Cuda().EnableGpuAnomalyKernels()) (GpuAnomaly.Engine's IlgpuDevice does)", e);
        }
    }

    internal static Action<KernelConfig, int, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>> LoadQuantize(Accelerator accelerator) =>
        accelerator.LoadStreamKernel<int, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>>(TernaryQuantizeKernel.Kernel);

    /// <summary>y [M, N] = TernaryLinear(x [M, K]): the GEMV for M &lt;= <see cref="GemvMaxTokens"/>, else the tiled GEMM.</summary>
    public void Forward(in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        if (p.M <= GemvMaxTokens) Gemv(p, x, packedW, scale, bias, y);
        else Gemm(p, x, packedW, scale, bias, y);
    }

    /// <summary>The warp-per-rows GEMV (any M; each token re-reads the weights, so it is for few tokens).</summary>
    public void Gemv(in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        Check("gemv", p, x, packedW, scale, bias, y.Length, "y");
        Run(p, x, packedW, scale, bias, y, default, gemm: false);
    }

    /// <summary>The tiled GEMM (64 tokens x 64 rows per group).</summary>
    public void Gemm(in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        Check("gemm", p, x, packedW, scale, bias, y.Length, "y");
        Run(p, x, packedW, scale, bias, y, default, gemm: true);
    }

    /// <summary>
    /// A8's exact int32 accumulators [M, N] (sum over k of w * x_q, before gamma / s and bias), by the
    /// GEMV or the GEMM kernel: what tests compare with <see cref="TernaryLinearReference.AccumulateA8"/>
    /// exactly. Scale and bias are not read.
    /// </summary>
    public void AccumulateA8(in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> packedW, ArrayView<int> acc, bool gemm)
    {
        var a8 = p;
        a8.Activations = TernaryActivations.A8;
        a8.HasBias = 0;
        a8.ScalePerRow = 0;
        Check(gemm ? "gemm" : "gemv", a8, x, packedW, default, default, acc.Length, "acc", checkScale: false);
        Run(a8, x, packedW, default, default, default, acc, gemm);
    }

    /// <summary>
    /// A8's quantizer alone: q [M, Words(K) * 4] packed int8 (layout in <see cref="TernaryQuantizeKernel"/>),
    /// s [M] (bit-exact with <see cref="TernaryLinearReference.QuantizeToken"/>) and qsum [M].
    /// </summary>
    public void Quantize(in TernaryLinearParams p, ArrayView<float> x, ArrayView<int> q, ArrayView<float> s, ArrayView<int> qsum)
    {
        p.Validate();
        if (x.Length != p.InputElements || q.Length != (long)p.M * p.KWords * 4 || s.Length != p.M || qsum.Length != p.M)
            throw new ArgumentException($"ternary_linear quantize: views x={x.Length}, q={q.Length}, s={s.Length}, qsum={qsum.Length}; {p} needs x={p.InputElements}, q={(long)p.M * p.KWords * 4}, s=qsum={p.M}");
        _quantize(new KernelConfig(p.M, TernaryQuantizeKernel.Warps * _accelerator.WarpSize), p.K, 1, x, q, default, s, qsum);
    }

    private void Run(in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y, ArrayView<int> acc, bool gemm)
    {
        KernelConfig config;
        if (gemm)
        {
            long mTiles = (p.M + TernaryGemmKernel.BM - 1) / TernaryGemmKernel.BM;
            if (mTiles > 65535)
                throw new ArgumentException($"ternary_linear gemm: {mTiles} token tiles exceed the grid's 65535 limit ({p})");
            config = new KernelConfig(new Index3D((p.N + TernaryGemmKernel.BN - 1) / TernaryGemmKernel.BN, (int)mTiles, 1),
                new Index3D(TernaryGemmKernel.Threads, 1, 1));
        }
        else
        {
            if (p.M > 65535)
                throw new ArgumentException($"ternary_linear gemv: {p.M} tokens exceed the grid's 65535 limit ({p})");
            config = new KernelConfig(new Index3D((p.N + TernaryGemvKernel.Rows - 1) / TernaryGemvKernel.Rows, p.M, 1),
                new Index3D(_gemvWarps * _accelerator.WarpSize, 1, 1));
        }

        if (p.Activations == TernaryActivations.A32)
        {
            if (gemm) _gemmA32(config, p, x, w, scale, bias, y);
            else _gemvA32(config, p, x, w, scale, bias, y);
            return;
        }
        // Exact int32: |sum| <= 128 K must not overflow.
        if (p.K > int.MaxValue / 128)
            throw new ArgumentException($"ternary_linear A8: K={p.K} could overflow the int32 accumulators ({p})");
        long qInts = (long)p.M * p.KWords * 4;
        if (qInts > int.MaxValue)
            throw new ArgumentException($"ternary_linear A8: the quantized activations exceed 2^31 ints ({p})");
        var q = Grow(ref _q, qInts).View.SubView(0, qInts);
        var s = Grow(ref _s, p.M).View.SubView(0, p.M);
        var qsum = Grow(ref _qsum, p.M).View.SubView(0, p.M);
        _quantize(new KernelConfig(p.M, TernaryQuantizeKernel.Warps * _accelerator.WarpSize), p.K, 1, x, q, default, s, qsum);
        int writeAcc = acc.Length > 0 ? 1 : 0;
        if (gemm) _gemmA8(config, p, q, w, scale, bias, s, qsum, y, acc, writeAcc);
        else _gemvA8(config, p, q, w, scale, bias, s, qsum, y, acc, writeAcc);
    }

    private MemoryBuffer1D<T, Stride1D.Dense> Grow<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length) where T : unmanaged
    {
        if (buffer is not null && buffer.Length >= length) return buffer;
        if (buffer is not null) _retired.Add(buffer);
        buffer = _accelerator.Allocate1D<T>(Math.Max(length, buffer is null ? 0 : 2 * buffer.Length));
        return buffer;
    }

    private static void Check(string kernel, in TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, long outLength, string outName, bool checkScale = true)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != p.WeightWords || outLength != p.OutputElements
            || (checkScale && scale.Length != p.ScaleElements) || (p.HasBias != 0 && bias.Length != p.N))
            throw new ArgumentException(
                $"ternary_linear {kernel}: views have x={x.Length}, w={w.Length} words, scale={scale.Length}, bias={bias.Length}, {outName}={outLength}; " +
                $"{p} needs x={p.InputElements}, w={p.WeightWords}, scale={p.ScaleElements}, bias={(p.HasBias != 0 ? p.N : 0)}, {outName}={p.OutputElements}");
    }

    public void Dispose()
    {
        _q?.Dispose();
        _s?.Dispose();
        _qsum?.Dispose();
        foreach (var b in _retired) b.Dispose();
        _retired.Clear();
        _q = _qsum = null;
        _s = null;
    }
}
