using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>
/// Output dims (right-aligned to <see cref="MaxRank"/>, leading ones) and the two inputs' element strides along them
/// (0 where an input is broadcast): what a broadcasting kernel thread needs to find its operands.
/// </summary>
public struct BroadcastLayout
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int A0, A1, A2, A3, A4, A5;
    public int B0, B1, B2, B3, B4, B5;

    /// <summary>From per-axis dims and strides of equal rank (at most <see cref="MaxRank"/>).</summary>
    public static BroadcastLayout Create(ReadOnlySpan<int> dims, ReadOnlySpan<long> sa, ReadOnlySpan<long> sb)
    {
        if (dims.Length > MaxRank) throw new ArgumentException($"broadcast over rank {dims.Length}; the GPU kernel takes at most {MaxRank}");
        Span<int> d = stackalloc int[MaxRank], a = stackalloc int[MaxRank], b = stackalloc int[MaxRank];
        d.Fill(1);
        int off = MaxRank - dims.Length;
        for (int i = 0; i < dims.Length; i++)
        {
            d[off + i] = dims[i];
            a[off + i] = checked((int)sa[i]);
            b[off + i] = checked((int)sb[i]);
        }
        return new BroadcastLayout
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            A0 = a[0], A1 = a[1], A2 = a[2], A3 = a[3], A4 = a[4], A5 = a[5],
            B0 = b[0], B1 = b[1], B2 = b[2], B3 = b[3], B4 = b[4], B5 = b[5],
        };
    }
}

/// <summary>
/// Grid-stride ILGPU kernels of the generic ONNX elementwise ops: a broadcasting binary op and a unary function, each
/// selected by an integer code (the engine's BinaryKind / UnaryKind numbers; see <see cref="SupportsUnary"/>).
/// </summary>
public sealed class BroadcastGpu
{
    private readonly Action<Index1D, int, int, int, BroadcastLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>> _binary;
    private readonly Action<Index1D, int, int, int, float, float, ArrayView<float>, ArrayView<float>> _unary;
    private readonly int _gridThreads;

    // Codes: binary 0 Add, 1 Sub, 2 Mul, 3 Div, 4 Pow, 5 Max, 6 Min, 7 Mod (the divisor's sign, numpy), 8 Fmod
    // (the dividend's, C), 9 PRelu; unary as listed in UnaryMath.Codes.
    public const int BinaryCodes = 10;

    public BroadcastGpu(Accelerator accelerator)
    {
        _binary = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, BroadcastLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BinaryKernel);
        _unary = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, float, float, ArrayView<float>, ArrayView<float>>(UnaryKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>Unary codes with a kernel: every <see cref="UnaryMath.Codes"/> function.</summary>
    public static bool SupportsUnary(int code) => code is >= 0 and < UnaryMath.Codes;

    public void Binary(int code, BroadcastLayout layout, int n, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        if (code is < 0 or >= BinaryCodes) throw new ArgumentException($"binary code {code} has no GPU kernel");
        if (n > 0) { int t = Math.Min(n, _gridThreads); _binary(t, n, t, code, layout, a, b, y); }
    }

    public void Unary(int code, float alpha, float beta, ArrayView<float> x, ArrayView<float> y)
    {
        if (!SupportsUnary(code)) throw new ArgumentException($"unary code {code} has no GPU kernel");
        int n = (int)y.Length;
        if (n > 0) { int t = Math.Min(n, _gridThreads); _unary(t, n, t, code, alpha, beta, x, y); }
    }

    private static void BinaryKernel(Index1D index, int n, int stride, int code, BroadcastLayout l, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int r = i, oa = 0, ob = 0, k;
            k = r % l.D5; r /= l.D5; oa += k * l.A5; ob += k * l.B5;
            k = r % l.D4; r /= l.D4; oa += k * l.A4; ob += k * l.B4;
            k = r % l.D3; r /= l.D3; oa += k * l.A3; ob += k * l.B3;
            k = r % l.D2; r /= l.D2; oa += k * l.A2; ob += k * l.B2;
            k = r % l.D1; r /= l.D1; oa += k * l.A1; ob += k * l.B1;
            oa += r * l.A0; ob += r * l.B0;
            float u = a[oa], v = b[ob];
            y[i] = code switch
            {
                0 => u + v,
                1 => u - v,
                2 => u * v,
                3 => u / v,
                4 => XMath.Pow(u, v),
                5 => float.IsNaN(u) || float.IsNaN(v) ? float.NaN : XMath.Max(u, v),
                6 => float.IsNaN(u) || float.IsNaN(v) ? float.NaN : XMath.Min(u, v),
                7 => Mod(u, v),
                8 => XMath.Rem(u, v),
                _ => u < 0f ? u * v : u,
            };
        }
    }

    /// <summary>
    /// numpy's mod: fmod moved onto the divisor's side. XMath.Rem is C#'s exact % on the CPU accelerator, but ILGPU
    /// 1.5.3's PTX lowers it to frac(|x * rcp(y)|) * |y| (off by about eps |x|, and by y where x / y rounds across an
    /// integer), so Mod and Fmod are exact there only on CPU accelerators. The cpu op's exact one-rounding form
    /// (NdMath.Mod) needs a fused multiply-add, and MathF.FusedMultiplyAdd becomes an unresolved extern call in
    /// ILGPU 1.5.3's PTX: it would take an intrinsic like Dp4aIntrinsic's emitting fma.rn.f32.
    /// </summary>
    private static float Mod(float u, float v)
    {
        float r = XMath.Rem(u, v);
        if (r == 0f) return v < 0f ? -0f : 0f;
        return (r < 0f) != (v < 0f) ? r + v : r;
    }

    private static void UnaryKernel(Index1D index, int n, int stride, int code, float alpha, float beta, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            y[i] = UnaryMath.Apply(code, x[i], alpha, beta);
        }
    }
}
