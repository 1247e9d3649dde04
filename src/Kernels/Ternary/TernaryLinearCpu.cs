using GpuAnomaly.Kernels.Cpu;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// TernaryLinear for the `cpu` device: managed SIMD (AVX-512, AVX2, scalar fallback), threads over blocks of
/// output rows. Weights stay 2-bit packed (16x fewer bytes than float32), so a GEMV streams 1/16 of the
/// memory of a float one; each decoded weight word is reused for up to 4 tokens (batch > 1) or each x
/// vector for 4 rows (batch 1).
/// <para>
/// A32 decodes a word into 16 float lanes of {-1, 0, +1} with one variable shift and one permute
/// (vpermps indexes a 16-entry table {-1, 0, 1, 2, ...} by the low 4 bits of each shifted lane, so no mask
/// is needed) and accumulates with FMA. fma(w, x, acc) with w in {-1, 0, +1} rounds exactly like acc + x,
/// acc - x or acc, so the arithmetic stays multiply-free in effect. Measured against the explicit
/// alternative (permute a sign-flip mask and a keep mask, xor, and, add: 4 ops instead of 1 FMA) on the
/// 4096x4096 GEMV (AVX-512, 2 threads, `ternary-cpu` bench): best 0.32 ms vs 0.46 ms, since an FMA costs
/// what an add does. Batches run 4 rows x 4 tokens per kernel (AVX2: 2 x 4): 4 decodes and 4 x loads per
/// 16 FMAs, 3-4x faster at M = 8 than 1 row x 4 tokens, which was bound by x loads from L2.
/// </para>
/// <para>
/// A8 quantizes each token (bit-identical to <see cref="TernaryLinearReference.QuantizeToken"/>) into a
/// per-block permuted int8 layout, then multiplies the unsigned 2-bit codes c = w + 1 straight from the
/// packed bytes (v &amp; 3, v &gt;&gt; 2 &amp; 3, ...) with pmaddubsw: sum c*q = sum w*q + sum q, and the
/// token's sum q is subtracted once. No decode to int8 signs is needed (and sign_epi8 would overflow at
/// q = -128, w = -1). Int16 pair sums are at most 4 * 2 * 2 * 128 = 2048, then pmaddwd widens to int32:
/// the accumulators are exact.
/// </para>
/// </summary>
public static unsafe class TernaryLinearCpu
{
    /// <summary>Tests set these to exercise the AVX2 and scalar paths on an AVX-512 machine, on their own thread only.</summary>
    [ThreadStatic] internal static bool ForceVector256, ForceScalar;

    private static bool Use512 => !ForceScalar && !ForceVector256 && Avx512BW.IsSupported && Vector512.IsHardwareAccelerated;
    private static bool Use256 => !ForceScalar && Avx2.IsSupported;

    /// <summary>Below this many weight-token products threads cost more than they save.</summary>
    private const long ParallelWork = 1L << 18;

    /// <param name="x">[M, K].</param>
    /// <param name="packedW">[N, Words(K)] (see <see cref="TernaryPacking"/>); codes are not validated here (the loader does it).</param>
    /// <param name="scale">[1] or [N].</param>
    /// <param name="bias">[N], or empty when p.HasBias == 0.</param>
    /// <param name="y">[M, N], every element written.</param>
    public static void Forward(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<uint> packedW,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> y)
    {
        Check(p, x, packedW, scale.Length, bias.Length, y.Length, true);
        fixed (float* px = x, ps = scale, pb = bias, py = y)
        fixed (uint* pw = packedW)
        {
            var e = new Epilogue { Scale = ps, PerRow = p.ScalePerRow != 0, Bias = p.HasBias != 0 ? pb : null, Y = py };
            if (p.Activations == TernaryActivations.A8) RunA8(p, px, pw, e, null);
            else RunA32(p, px, pw, e);
        }
    }

    /// <summary>A8's int32 accumulators [M, N] (exactly <see cref="TernaryLinearReference.AccumulateA8"/>'s) and each token's scale s [M].</summary>
    public static int[] AccumulateA8(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<uint> packedW, out float[] s)
    {
        Check(p, x, packedW, p.ScaleElements, p.HasBias != 0 ? p.N : 0, p.OutputElements, false);
        var acc = new int[p.OutputElements];
        fixed (float* px = x)
        fixed (uint* pw = packedW)
        fixed (int* pa = acc)
            s = RunA8(p, px, pw, default, pa);
        return acc;
    }

    private static void Check(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<uint> w, long scale, long bias, long y, bool forward)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != p.WeightWords || (forward && (scale != p.ScaleElements
            || bias != (p.HasBias != 0 ? p.N : 0) || y != p.OutputElements)))
            throw new ArgumentException(
                $"ternary_linear: buffer sizes x={x.Length} w={w.Length} scale={scale} bias={bias} y={y} do not match {p} " +
                $"(expected x=[{p.M}, {p.K}] w=[{p.N}, {p.KWords}] words scale={p.ScaleElements} bias={(p.HasBias != 0 ? p.N : 0)} y=[{p.M}, {p.N}])");
    }

    /// <summary>y = acc * gamma (/ s) + bias for one output.</summary>
    private struct Epilogue
    {
        public float* Scale, Bias, Y;
        public bool PerRow;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Store(long at, int n, float acc) => Y[at] = acc * Scale[PerRow ? n : 0] + (Bias != null ? Bias[n] : 0f);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void StoreA8(long at, int n, int acc, float s) =>
            Y[at] = (float)(acc * (double)Scale[PerRow ? n : 0] / s + (Bias != null ? Bias[n] : 0.0));
    }

    /// <summary>Runs body over [0, n) in blocks of rows (a multiple of 4), threaded when the work is large enough.</summary>
    private static void ForRowBlocks(int n, long work, Action<int, int> body)
    {
        if (work < ParallelWork || CpuParallel.Threads == 1)
        {
            body(0, n);
            return;
        }
        int rows = Math.Max(4, (n / (8 * CpuParallel.Threads) + 3) / 4 * 4);
        int blocks = (n + rows - 1) / rows;
        CpuParallel.For(0, blocks, b => body(b * rows, Math.Min(n, (b + 1) * rows)));
    }

    // ---------------------------------------------------------------- A32

    private static void RunA32(in TernaryLinearParams p, float* x, uint* w, Epilogue e)
    {
        int m = p.M, n = p.N, k = p.K, words = p.KWords, kp = words * 16;
        // x padded to whole words with zeros: kernels decode whole words and must not read past K.
        float[]? rented = kp == k ? null : ArrayPool<float>.Shared.Rent(m * kp);
        fixed (float* xr = rented)
        {
            float* xp = x;
            if (rented is not null)
            {
                xp = xr;
                for (int i = 0; i < m; i++)
                {
                    new ReadOnlySpan<float>(x + (long)i * k, k).CopyTo(new Span<float>(xp + (long)i * kp, k));
                    new Span<float>(xp + (long)i * kp + k, kp - k).Clear();
                }
            }
            nint xa = (nint)xp, wa = (nint)w;
            int kind = Use512 ? 2 : Use256 ? 1 : 0;
            ForRowBlocks(n, (long)m * n * k, (r0, r1) => A32Rows((float*)xa, (uint*)wa, m, n, words, kp, e, kind, r0, r1));
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    private static void A32Rows(float* x, uint* w, int m, int n, int words, int kp, Epilogue e, int kind, int r0, int r1)
    {
        float* sums = stackalloc float[16];
        int t = 0;
        // Four tokens at a time: each decoded word feeds four FMAs, and each x vector 4 (AVX-512) or 2 (AVX2) rows.
        for (; t + 4 <= m; t += 4)
        {
            int r = r0;
            int rb = kind == 2 ? 4 : kind == 1 ? 2 : r1;
            for (; kind != 0 && r + rb <= r1; r += rb)
            {
                float* xt = x + (long)t * kp;
                if (kind == 2) A32R4T4x512(w + (long)r * words, words, xt, kp, sums);
                else A32R2T4x256(w + (long)r * words, words, xt, kp, sums);
                for (int i = 0; i < rb; i++)
                    for (int j = 0; j < 4; j++) e.Store((long)(t + j) * n + r + i, r + i, sums[i * 4 + j]);
            }
            for (; r < r1; r++)
            {
                uint* wr = w + (long)r * words;
                float* xt = x + (long)t * kp;
                if (kind == 2) A32T4x512(wr, words, xt, kp, sums);
                else if (kind == 1) A32T4x256(wr, words, xt, kp, sums);
                else for (int j = 0; j < 4; j++) sums[j] = A32Scalar(wr, words, xt + j * kp);
                for (int j = 0; j < 4; j++) e.Store((long)(t + j) * n + r, r, sums[j]);
            }
        }
        // Remaining tokens (the GEMV): four rows at a time, each x vector feeding four FMAs.
        for (; t < m; t++)
        {
            float* xt = x + (long)t * kp;
            int r = r0;
            for (; r + 4 <= r1 && kind != 0; r += 4)
            {
                uint* wr = w + (long)r * words;
                if (kind == 2) A32R4x512(wr, words, xt, sums);
                else A32R4x256(wr, words, xt, sums);
                for (int j = 0; j < 4; j++) e.Store((long)t * n + r + j, r + j, sums[j]);
            }
            for (; r < r1; r++) e.Store((long)t * n + r, r, A32Scalar(w + (long)r * words, words, xt));
        }
    }

    private static float A32Scalar(uint* w, int words, float* x)
    {
        float acc = 0;
        for (int i = 0; i < words; i++)
        {
            uint word = w[i];
            for (int j = 0; j < 16; j++, word >>= 2)
            {
                uint c = word & 3;
                if (c == 2) acc += x[i * 16 + j];
                else if (c == 0) acc -= x[i * 16 + j];
            }
        }
        return acc;
    }

    private static readonly Vector512<uint> Shifts512 = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<float> Signs512 = Vector512.Create(-1f, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2);
    private static readonly Vector256<uint> ShiftsLo256 = Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14);
    private static readonly Vector256<uint> ShiftsHi256 = Vector256.Create(16u, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector256<float> Signs256 = Vector256.Create(-1f, 0, 1, 2, -1, 0, 1, 2);

    /// <summary>16 weights of a word as floats: lane j = code(j) - 1 (code 3, invalid, decodes to 2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Decode512(uint word, Vector512<uint> shifts, Vector512<float> signs) =>
        Avx512F.PermuteVar16x32(signs, Avx512F.ShiftRightLogicalVariable(Vector512.Create(word), shifts).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Decode256(uint word, Vector256<uint> shifts, Vector256<float> signs) =>
        Avx2.PermuteVar8x32(signs, Avx2.ShiftRightLogicalVariable(Vector256.Create(word), shifts).AsInt32());

    /// <summary>4 rows x 4 tokens: per word 4 decodes and 4 x loads feed 16 FMAs (16 of the 32 zmm registers accumulate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32R4T4x512(uint* w, int words, float* x, int kp, float* sums)
    {
        var sh = Shifts512; var sg = Signs512;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default, a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        uint* w1 = w + words, w2 = w1 + words, w3 = w2 + words;
        float* x1 = x + kp, x2 = x1 + kp, x3 = x2 + kp;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var d0 = Decode512(w[i], sh, sg);
            var d1 = Decode512(w1[i], sh, sg);
            var d2 = Decode512(w2[i], sh, sg);
            var d3 = Decode512(w3[i], sh, sg);
            var x0v = Vector512.Load(x + k);
            a00 = Vector512.FusedMultiplyAdd(d0, x0v, a00);
            a10 = Vector512.FusedMultiplyAdd(d1, x0v, a10);
            a20 = Vector512.FusedMultiplyAdd(d2, x0v, a20);
            a30 = Vector512.FusedMultiplyAdd(d3, x0v, a30);
            var x1v = Vector512.Load(x1 + k);
            a01 = Vector512.FusedMultiplyAdd(d0, x1v, a01);
            a11 = Vector512.FusedMultiplyAdd(d1, x1v, a11);
            a21 = Vector512.FusedMultiplyAdd(d2, x1v, a21);
            a31 = Vector512.FusedMultiplyAdd(d3, x1v, a31);
            var x2v = Vector512.Load(x2 + k);
            a02 = Vector512.FusedMultiplyAdd(d0, x2v, a02);
            a12 = Vector512.FusedMultiplyAdd(d1, x2v, a12);
            a22 = Vector512.FusedMultiplyAdd(d2, x2v, a22);
            a32 = Vector512.FusedMultiplyAdd(d3, x2v, a32);
            var x3v = Vector512.Load(x3 + k);
            a03 = Vector512.FusedMultiplyAdd(d0, x3v, a03);
            a13 = Vector512.FusedMultiplyAdd(d1, x3v, a13);
            a23 = Vector512.FusedMultiplyAdd(d2, x3v, a23);
            a33 = Vector512.FusedMultiplyAdd(d3, x3v, a33);
        }
        sums[0] = Vector512.Sum(a00); sums[1] = Vector512.Sum(a01); sums[2] = Vector512.Sum(a02); sums[3] = Vector512.Sum(a03);
        sums[4] = Vector512.Sum(a10); sums[5] = Vector512.Sum(a11); sums[6] = Vector512.Sum(a12); sums[7] = Vector512.Sum(a13);
        sums[8] = Vector512.Sum(a20); sums[9] = Vector512.Sum(a21); sums[10] = Vector512.Sum(a22); sums[11] = Vector512.Sum(a23);
        sums[12] = Vector512.Sum(a30); sums[13] = Vector512.Sum(a31); sums[14] = Vector512.Sum(a32); sums[15] = Vector512.Sum(a33);
    }

    /// <summary>2 rows x 4 tokens (AVX2 has 16 ymm registers: 8 accumulate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32R2T4x256(uint* w, int words, float* x, int kp, float* sums)
    {
        var lo = ShiftsLo256; var hi = ShiftsHi256; var sg = Signs256;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        uint* w1 = w + words;
        float* x1 = x + kp, x2 = x1 + kp, x3 = x2 + kp;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var d0lo = Decode256(w[i], lo, sg);
            var d1lo = Decode256(w1[i], lo, sg);
            var x0lo = Vector256.Load(x + k + 0);
            a00 = Vector256.FusedMultiplyAdd(d0lo, x0lo, a00);
            a10 = Vector256.FusedMultiplyAdd(d1lo, x0lo, a10);
            var x1lo = Vector256.Load(x1 + k + 0);
            a01 = Vector256.FusedMultiplyAdd(d0lo, x1lo, a01);
            a11 = Vector256.FusedMultiplyAdd(d1lo, x1lo, a11);
            var x2lo = Vector256.Load(x2 + k + 0);
            a02 = Vector256.FusedMultiplyAdd(d0lo, x2lo, a02);
            a12 = Vector256.FusedMultiplyAdd(d1lo, x2lo, a12);
            var x3lo = Vector256.Load(x3 + k + 0);
            a03 = Vector256.FusedMultiplyAdd(d0lo, x3lo, a03);
            a13 = Vector256.FusedMultiplyAdd(d1lo, x3lo, a13);
            var d0hi = Decode256(w[i], hi, sg);
            var d1hi = Decode256(w1[i], hi, sg);
            var x0hi = Vector256.Load(x + k + 8);
            a00 = Vector256.FusedMultiplyAdd(d0hi, x0hi, a00);
            a10 = Vector256.FusedMultiplyAdd(d1hi, x0hi, a10);
            var x1hi = Vector256.Load(x1 + k + 8);
            a01 = Vector256.FusedMultiplyAdd(d0hi, x1hi, a01);
            a11 = Vector256.FusedMultiplyAdd(d1hi, x1hi, a11);
            var x2hi = Vector256.Load(x2 + k + 8);
            a02 = Vector256.FusedMultiplyAdd(d0hi, x2hi, a02);
            a12 = Vector256.FusedMultiplyAdd(d1hi, x2hi, a12);
            var x3hi = Vector256.Load(x3 + k + 8);
            a03 = Vector256.FusedMultiplyAdd(d0hi, x3hi, a03);
            a13 = Vector256.FusedMultiplyAdd(d1hi, x3hi, a13);
        }
        sums[0] = Vector256.Sum(a00); sums[1] = Vector256.Sum(a01); sums[2] = Vector256.Sum(a02); sums[3] = Vector256.Sum(a03);
        sums[4] = Vector256.Sum(a10); sums[5] = Vector256.Sum(a11); sums[6] = Vector256.Sum(a12); sums[7] = Vector256.Sum(a13);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32T4x512(uint* w, int words, float* x, int kp, float* sums)
    {
        var sh = Shifts512; var sg = Signs512;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* x1 = x + kp, x2 = x1 + kp, x3 = x2 + kp;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var wv = Decode512(w[i], sh, sg);
            a0 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x + k), a0);
            a1 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x1 + k), a1);
            a2 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x2 + k), a2);
            a3 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x3 + k), a3);
        }
        sums[0] = Vector512.Sum(a0); sums[1] = Vector512.Sum(a1); sums[2] = Vector512.Sum(a2); sums[3] = Vector512.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32R4x512(uint* w, int words, float* x, float* sums)
    {
        var sh = Shifts512; var sg = Signs512;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        uint* w1 = w + words, w2 = w1 + words, w3 = w2 + words;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var xv = Vector512.Load(x + k);
            a0 = Vector512.FusedMultiplyAdd(Decode512(w[i], sh, sg), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(Decode512(w1[i], sh, sg), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(Decode512(w2[i], sh, sg), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(Decode512(w3[i], sh, sg), xv, a3);
        }
        sums[0] = Vector512.Sum(a0); sums[1] = Vector512.Sum(a1); sums[2] = Vector512.Sum(a2); sums[3] = Vector512.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32T4x256(uint* w, int words, float* x, int kp, float* sums)
    {
        var lo = ShiftsLo256; var hi = ShiftsHi256; var sg = Signs256;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* x1 = x + kp, x2 = x1 + kp, x3 = x2 + kp;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var wl = Decode256(w[i], lo, sg);
            var wh = Decode256(w[i], hi, sg);
            a0 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x + k), a0);
            a1 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x1 + k), a1);
            a2 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x2 + k), a2);
            a3 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x3 + k), a3);
            a0 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x + k + 8), a0);
            a1 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x1 + k + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x2 + k + 8), a2);
            a3 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x3 + k + 8), a3);
        }
        sums[0] = Vector256.Sum(a0); sums[1] = Vector256.Sum(a1); sums[2] = Vector256.Sum(a2); sums[3] = Vector256.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A32R4x256(uint* w, int words, float* x, float* sums)
    {
        var lo = ShiftsLo256; var hi = ShiftsHi256; var sg = Signs256;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        uint* w1 = w + words, w2 = w1 + words, w3 = w2 + words;
        for (int i = 0, k = 0; i < words; i++, k += 16)
        {
            var xl = Vector256.Load(x + k);
            var xh = Vector256.Load(x + k + 8);
            a0 = Vector256.FusedMultiplyAdd(Decode256(w[i], lo, sg), xl, a0);
            a1 = Vector256.FusedMultiplyAdd(Decode256(w1[i], lo, sg), xl, a1);
            a2 = Vector256.FusedMultiplyAdd(Decode256(w2[i], lo, sg), xl, a2);
            a3 = Vector256.FusedMultiplyAdd(Decode256(w3[i], lo, sg), xl, a3);
            a0 = Vector256.FusedMultiplyAdd(Decode256(w[i], hi, sg), xh, a0);
            a1 = Vector256.FusedMultiplyAdd(Decode256(w1[i], hi, sg), xh, a1);
            a2 = Vector256.FusedMultiplyAdd(Decode256(w2[i], hi, sg), xh, a2);
            a3 = Vector256.FusedMultiplyAdd(Decode256(w3[i], hi, sg), xh, a3);
        }
        sums[0] = Vector256.Sum(a0); sums[1] = Vector256.Sum(a1); sums[2] = Vector256.Sum(a2); sums[3] = Vector256.Sum(a3);
    }

    // ---------------------------------------------------------------- A8

    /// <summary>
    /// <see cref="TernaryLinearReference.QuantizeToken"/> vectorized, bit-identical for finite x (max is
    /// order-free, x * s and round-half-even are single IEEE operations), values stored as floats. Returns s.
    /// </summary>
    internal static float QuantizeToken(ReadOnlySpan<float> x, Span<float> q)
    {
        int i = 0, n = x.Length;
        float amax = 0;
        ref float x0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float q0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(q);
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.LoadUnsafe(ref x0, (nuint)i)));
            for (int j = 0; j < 8; j++) amax = MathF.Max(amax, m[j]);
        }
        for (; i < n; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
        float s = 127f / MathF.Max(amax, TernaryQuantizer.MinGamma);
        i = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var vs = Vector256.Create(s);
            var lo = Vector256.Create(-128f);
            var hi = Vector256.Create(127f);
            for (; i <= n - 8; i += 8)
                Vector256.Min(Vector256.Max(Vector256.Round(Vector256.LoadUnsafe(ref x0, (nuint)i) * vs), lo), hi).StoreUnsafe(ref q0, (nuint)i);
        }
        for (; i < n; i++) q[i] = Math.Clamp(MathF.Round(x[i] * s, MidpointRounding.ToEven), -128f, 127f);
        return s;
    }

    /// <summary>Computes A8: into acc when given (the exact accumulators), else through the epilogue. Returns s [M].</summary>
    private static float[] RunA8(in TernaryLinearParams p, float* x, uint* w, Epilogue e, int* acc)
    {
        int m = p.M, n = p.N, k = p.K, words = p.KWords;
        int kind = Use512 ? 2 : Use256 ? 1 : 0;
        // Block of packed words one vector covers; q is laid out per block as [4][block bytes] (see Permute).
        int blockWords = kind == 2 ? 16 : kind == 1 ? 8 : 1;
        int blocks = (words + blockWords - 1) / blockWords, kq = blocks * blockWords * 16;
        var s = new float[m];
        var sumQ = new int[m];
        var q = ArrayPool<sbyte>.Shared.Rent(m * kq);
        var qf = ArrayPool<float>.Shared.Rent(k);
        for (int t = 0; t < m; t++)
        {
            s[t] = QuantizeToken(new ReadOnlySpan<float>(x + (long)t * k, k), qf);
            var qt = q.AsSpan(t * kq, kq);
            qt.Clear();
            int sum = 0;
            int bw = blockWords * 4; // bytes of packed weights per block = q bytes per code plane
            // Weight c sits in packed byte c / 4 at bits 2 * (c % 4): within block b, q goes to plane c % 4, byte (c / 4) % bw.
            for (int b = 0, c0 = 0; c0 < k; b++, c0 += 4 * bw)
            {
                var dst = qt.Slice(b * 4 * bw, 4 * bw);
                int end = Math.Min(4 * bw, k - c0);
                for (int c = 0; c < end; c++)
                {
                    int v = (int)qf[c0 + c];
                    sum += v;
                    dst[(c & 3) * bw + (c >> 2)] = (sbyte)v;
                }
            }
            sumQ[t] = sum;
        }
        ArrayPool<float>.Shared.Return(qf);
        fixed (sbyte* pq = q)
        fixed (int* ps = sumQ)
        fixed (float* pS = s)
        {
            nint qa = (nint)pq, wa = (nint)w, sa = (nint)ps, sca = (nint)pS, aa = (nint)acc;
            ForRowBlocks(n, (long)m * n * k, (r0, r1) =>
                A8Rows((sbyte*)qa, (uint*)wa, (int*)sa, (float*)sca, m, n, words, blockWords, kq, e, (int*)aa, kind, r0, r1));
        }
        ArrayPool<sbyte>.Shared.Return(q);
        return s;
    }

    private static void A8Rows(sbyte* q, uint* w, int* sumQ, float* s, int m, int n, int words, int blockWords, int kq,
        Epilogue e, int* acc, int kind, int r0, int r1)
    {
        int* sums = stackalloc int[4];
        // A row's last block may run past its words: decode it from a copy padded with zero codes (x_q is 0 there).
        uint* tail = stackalloc uint[16];
        int full = words / blockWords, rest = words % blockWords;
        for (int r = r0; r < r1; r++)
        {
            uint* wr = w + (long)r * words;
            uint* wt = null;
            if (rest != 0)
            {
                for (int i = 0; i < blockWords; i++) tail[i] = i < rest ? wr[full * blockWords + i] : TernaryPacking.ZeroWord;
                wt = tail;
            }
            int t = 0;
            for (; t < m; )
            {
                int tokens = Math.Min(4, m - t);
                sbyte* qt = q + (long)t * kq;
                if (kind == 2) A8x512(wr, full, wt, qt, kq, tokens, sums);
                else if (kind == 1) A8x256(wr, full, wt, qt, kq, tokens, sums);
                else for (int j = 0; j < tokens; j++) sums[j] = A8Scalar(wr, words, qt + (long)j * kq);
                for (int j = 0; j < tokens; j++)
                {
                    int a = sums[j] - (kind == 0 ? 0 : sumQ[t + j]);
                    long at = (long)(t + j) * n + r;
                    if (acc != null) acc[at] = a;
                    else e.StoreA8(at, r, a, s[t + j]);
                }
                t += tokens;
            }
        }
    }

    /// <summary>Scalar sum w*q over a row; blocks are one word, so weight j of word i has q at i * 16 + (j % 4) * 4 + j / 4.</summary>
    private static int A8Scalar(uint* w, int words, sbyte* q)
    {
        int acc = 0;
        for (int i = 0; i < words; i++)
        {
            uint word = w[i];
            sbyte* qb = q + i * 16;
            for (int c = 0; c < 16; c++)
            {
                int code = (int)(word >> (2 * c)) & 3;
                if (code != 1) acc += (code - 1) * qb[(c & 3) * 4 + (c >> 2)];
            }
        }
        return acc;
    }

    /// <summary>
    /// sum over the row of code * q for 1..4 tokens (the caller subtracts sum q). Pair sums of 4 planes are at most
    /// 2048 per int16 lane, so 8 blocks add up in int16 (16384) before one pmaddwd widens them: 4 instead of 5
    /// port-0 ops per token and block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A8x512(uint* w, int full, uint* tail, sbyte* q, int kq, int tokens, int* sums)
    {
        var m3 = Vector512.Create((byte)3);
        var ones = Vector512.Create((short)1);
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<short> s0 = default, s1 = default, s2 = default, s3 = default;
        int blocks = full + (tail != null ? 1 : 0);
        for (int b = 0; b < blocks; b++)
        {
            var v = Vector512.Load((byte*)(b < full ? w + b * 16 : tail));
            var c0 = v & m3;
            var c1 = Vector512.ShiftRightLogical(v.AsUInt16(), 2).AsByte() & m3;
            var c2 = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m3;
            var c3 = Vector512.ShiftRightLogical(v.AsUInt16(), 6).AsByte() & m3;
            sbyte* qb = q + b * 256;
            s0 += Dot512(c0, c1, c2, c3, qb);
            if (tokens > 1) s1 += Dot512(c0, c1, c2, c3, qb + kq);
            if (tokens > 2) s2 += Dot512(c0, c1, c2, c3, qb + 2 * kq);
            if (tokens > 3) s3 += Dot512(c0, c1, c2, c3, qb + 3 * kq);
            if ((b & 7) == 7 || b == blocks - 1)
            {
                a0 += Avx512BW.MultiplyAddAdjacent(s0, ones); a1 += Avx512BW.MultiplyAddAdjacent(s1, ones);
                a2 += Avx512BW.MultiplyAddAdjacent(s2, ones); a3 += Avx512BW.MultiplyAddAdjacent(s3, ones);
                s0 = s1 = s2 = s3 = default;
            }
        }
        sums[0] = Vector512.Sum(a0); sums[1] = Vector512.Sum(a1); sums[2] = Vector512.Sum(a2); sums[3] = Vector512.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Dot512(Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3, sbyte* q) =>
        Avx512BW.MultiplyAddAdjacent(c0, Vector512.Load(q)) + Avx512BW.MultiplyAddAdjacent(c1, Vector512.Load(q + 64))
        + Avx512BW.MultiplyAddAdjacent(c2, Vector512.Load(q + 128)) + Avx512BW.MultiplyAddAdjacent(c3, Vector512.Load(q + 192));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void A8x256(uint* w, int full, uint* tail, sbyte* q, int kq, int tokens, int* sums)
    {
        var m3 = Vector256.Create((byte)3);
        var ones = Vector256.Create((short)1);
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
        int blocks = full + (tail != null ? 1 : 0);
        for (int b = 0; b < blocks; b++)
        {
            var v = Vector256.Load((byte*)(b < full ? w + b * 8 : tail));
            var c0 = v & m3;
            var c1 = Vector256.ShiftRightLogical(v.AsUInt16(), 2).AsByte() & m3;
            var c2 = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m3;
            var c3 = Vector256.ShiftRightLogical(v.AsUInt16(), 6).AsByte() & m3;
            sbyte* qb = q + b * 128;
            a0 += Dot256(c0, c1, c2, c3, qb, ones);
            if (tokens > 1) a1 += Dot256(c0, c1, c2, c3, qb + kq, ones);
            if (tokens > 2) a2 += Dot256(c0, c1, c2, c3, qb + 2 * kq, ones);
            if (tokens > 3) a3 += Dot256(c0, c1, c2, c3, qb + 3 * kq, ones);
        }
        sums[0] = Vector256.Sum(a0); sums[1] = Vector256.Sum(a1); sums[2] = Vector256.Sum(a2); sums[3] = Vector256.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot256(Vector256<byte> c0, Vector256<byte> c1, Vector256<byte> c2, Vector256<byte> c3, sbyte* q, Vector256<short> ones)
    {
        var t = Avx2.MultiplyAddAdjacent(c0, Vector256.Load(q)) + Avx2.MultiplyAddAdjacent(c1, Vector256.Load(q + 32))
            + Avx2.MultiplyAddAdjacent(c2, Vector256.Load(q + 64)) + Avx2.MultiplyAddAdjacent(c3, Vector256.Load(q + 96));
        return Avx2.MultiplyAddAdjacent(t, ones);
    }
}
