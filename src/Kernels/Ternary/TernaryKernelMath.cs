using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.IR.Intrinsics;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>Device-side pieces shared by the ternary kernels: decoding, int8 dot products, BitNet's rounding.</summary>
internal static class TernaryKernelMath
{
    /// <summary>Picks the 4 codes at positions j, j+4, j+8, j+12 of a word into the 4 bytes (unsigned 0..2 each).</summary>
    public const uint ByteCodes = 0x0303_0303u;

    /// <summary>
    /// w * x for the code at <paramref name="shift"/> of a word, multiply-free: code 2 is +x,
    /// code 0 is -x, code 1 is 0 (two selects on the GPU).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Select(uint word, int shift, float x)
    {
        uint c = (word >> shift) & 3u;
        float v = c == 2u ? x : 0f;
        return c == 0u ? -x : v;
    }

    /// <summary>
    /// a + w * x for the code at <paramref name="shift"/>, multiply-free: + x for code 2, - x for code 0, nothing for
    /// code 1. Written as two conditional adds, ptxas makes each test one LOP3 that sets a predicate and each add a
    /// predicated FADD: 4 instructions a weight in the GEMV's SASS, where <see cref="Select"/> then an add took about
    /// 7.5 (ISETP, ISETP, SEL, SEL, FADD and the extraction; docs/PERFORMANCE.md). For the codes 0-2 the sums are the
    /// old ones bit for bit (a - x is a + (-x)); the invalid code 3, which the loader rejects, now adds + x (Select: 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Accumulate(float a, uint word, int shift, float x)
    {
        float r = (word & (2u << shift)) != 0 ? a + x : a;
        return (word & (3u << shift)) == 0 ? r - x : r;
    }

    /// <summary>The weight (-1, 0, +1) at <paramref name="shift"/> as a float, for GEMM tiles staged in shared memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Weight(uint word, int shift) => Select(word, shift, 1f);

    /// <summary>
    /// acc + sum over the 4 bytes of codes (unsigned) times q (signed int8). On CUDA, with the context built by
    /// <see cref="Dp4aIntrinsic.EnableGpuAnomalyKernels"/>, ILGPU replaces each call by one PTX dp4a.u32.s32 (sm_61+);
    /// this body is what the CPU emulator runs. [IntrinsicImplementation] is what makes ILGPU keep the call for the
    /// replacement instead of compiling the body (tests/Ptx checks the dp4a count).
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Dp4a(uint codes, int q, int acc) =>
        acc
        + (int)(codes & 0xFFu) * ((q << 24) >> 24)
        + (int)((codes >> 8) & 0xFFu) * ((q << 16) >> 24)
        + (int)((codes >> 16) & 0xFFu) * ((q << 8) >> 24)
        + (int)(codes >> 24) * (q >> 24);

    /// <summary>
    /// sum_k code_k * q_k over one packed word (16 codes) and its 4 activation ints, where int j
    /// holds the int8 activations of positions j, j+4, j+8, j+12 (the layout the quantize kernel
    /// writes). The ternary sum is this minus sum_k q_k (w = code - 1), which the caller
    /// subtracts once per token.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotWord(uint word, int q0, int q1, int q2, int q3, int acc)
    {
        acc = Dp4a(word & ByteCodes, q0, acc);
        acc = Dp4a((word >> 2) & ByteCodes, q1, acc);
        acc = Dp4a((word >> 4) & ByteCodes, q2, acc);
        return Dp4a((word >> 6) & ByteCodes, q3, acc);
    }

    /// <summary>
    /// QuantizeToken's clamp(round_half_even(v), -128, 127) in explicit float32/int arithmetic,
    /// so that no backend's rounding intrinsic (round-away on some) decides a tie: below 2^23 a
    /// float's fraction a - trunc(a) is exact, and ties go to the even integer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int QuantizeValue(float v)
    {
        float a = v < 0f ? -v : v;
        if (!(a < 1024f)) return v < 0f ? -128 : 127; // far outside [-128, 127] (or NaN: the reference's cast is undefined there)
        int t = (int)a;
        float f = a - t;
        if (f > 0.5f || (f == 0.5f && (t & 1) != 0)) t++;
        int r = v < 0f ? -t : t;
        return r < -128 ? -128 : (r > 127 ? 127 : r);
    }

    /// <summary>Bias, then the activation, as <see cref="Conv.Conv2dReference"/> applies them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Activate(float v, Activation act, float slope)
    {
        if (act == Activation.Relu) return v > 0f ? v : 0f;
        if (act == Activation.LeakyRelu) return v >= 0f ? v : v * slope;
        return v;
    }
}
