using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU.Algorithms;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// GELU, exact erf form (PyTorch's nn.GELU() default): y = 0.5 x (1 + erf(x / sqrt 2)).
/// ILGPU 1.5.3 has no portable erf (only CUDA's libdevice binding), so erf is computed here in float,
/// one formula for the scalar (kernel) and the SIMD (cpu) paths:
/// <list type="bullet">
/// <item>|x| &lt; 1: erf(x) = x P(u), u = 2x^2 - 1, P of degree 6: Chebyshev interpolation of erf(sqrt t)/sqrt t on t in [0, 1]
///   (max error 1.3e-9 in exact arithmetic).</item>
/// <item>1 &lt;= |x| &lt; 3.92: erf(x) = 1 - exp(Q(u)), u = (2|x| - 4.92) / 2.92, Q of degree 10: Chebyshev interpolation of
///   ln erfc(x) on [1, 3.92] (max error 1.8e-9; the error of erf is erfc(x) times that).</item>
/// <item>|x| &gt;= 3.92: erfc(x) &lt; 5.6e-8, below half an ulp of 1, so erf = sign(x).</item>
/// </list>
/// The coefficients were derived (not copied) with mpmath at 40 digits: interpolation at the 7 (11) Chebyshev nodes,
/// then converted to monomials in u; the float result stays within a few ulp (GeluTests measures the sweep).
/// Caveat as in PyTorch's float GELU: for x below about -4, 1 + erf(x / sqrt 2) cancels, so those (tiny) outputs
/// carry a larger relative error; their absolute error stays below 1e-7 |x|.
/// </summary>
public static class Gelu
{
    private const float A0 = 0.9654687387f, A1 = -0.1405360973f, A2 = 0.01985249714f, A3 = -0.002285419545f,
        A4 = 0.0002175135417f, A5 = -1.766906803e-5f, A6 = 1.230605479e-6f;
    private const float Q0 = -7.594217572f, Q1 = -7.704744006f, Q2 = -2.009181586f, Q3 = -0.03489160723f,
        Q4 = 0.01023046941f, Q5 = -0.002916509238f, Q6 = 0.0007808838526f, Q7 = -0.0001916345351f,
        Q8 = 3.89094403e-5f, Q9 = -1.609107972e-6f, Q10 = -1.979188048e-6f;
    /// <summary>u = |x| * QScale + QShift maps [1, 3.92] onto [-1, 1].</summary>
    private const float QScale = 2f / 2.92f, QShift = -4.92f / 2.92f;
    private const float Tail = 3.92f;
    private const float InvSqrt2 = 0.707106781186547524f;

    /// <summary>erf in float (usable inside ILGPU kernels).</summary>
    public static float Erf(float x)
    {
        float a = Math.Abs(x), r;
        if (a < 1f)
        {
            float u = 2f * a * a - 1f;
            r = a * (A0 + u * (A1 + u * (A2 + u * (A3 + u * (A4 + u * (A5 + u * A6))))));
        }
        else if (a < Tail)
        {
            float u = a * QScale + QShift;
            float q = Q0 + u * (Q1 + u * (Q2 + u * (Q3 + u * (Q4 + u * (Q5 + u * (Q6 + u * (Q7 + u * (Q8 + u * (Q9 + u * Q10)))))))));
            r = 1f - XMath.Exp(q);
        }
        else r = float.IsNaN(a) ? a : 1f;
        return x < 0f ? -r : r;
    }

    /// <summary>GELU in float (usable inside ILGPU kernels).</summary>
    public static float Apply(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));

    /// <summary>
    /// erf of each lane, the same formula as <see cref="Erf(float)"/> (both branches, then a select), at the width of
    /// <see cref="Vector{T}"/>: the Vector512 / Vector256 code (a 128-bit Vector&lt;T&gt;, as on Arm, goes through Vector256, which
    /// runs there as two 128-bit halves).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Erf(Vector<float> x) =>
        Vector<float>.Count == 16 ? Erf(x.AsVector512()).AsVector()
        : Vector<float>.Count == 8 ? Erf(x.AsVector256()).AsVector()
        : Erf(x.AsVector128().ToVector256()).GetLower().AsVector();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Apply(Vector<float> x) =>
        Vector<float>.Count == 16 ? Apply(x.AsVector512()).AsVector()
        : Vector<float>.Count == 8 ? Apply(x.AsVector256()).AsVector()
        : Apply(x.AsVector128().ToVector256()).GetLower().AsVector();

    /// <summary>erf of each lane, the same formula as <see cref="Erf(float)"/>, with fused multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Erf(Vector512<float> x)
    {
        var a = Vector512.Abs(x);
        var u = Vector512.FusedMultiplyAdd(a + a, a, Vector512.Create(-1f));
        var p = Fma(Fma(Fma(Fma(Fma(Fma(Vector512.Create(A6), u, A5), u, A4), u, A3), u, A2), u, A1), u, A0);
        var small = a * p;
        // The large branch on |x| clamped to [1, Tail]: Q's argument stays in [-1, 1], so Exp's is bounded (no special cases).
        var t = Vector512.MinNative(Vector512.MaxNative(a, Vector512<float>.One), Vector512.Create(Tail));
        var v = Vector512.FusedMultiplyAdd(t, Vector512.Create(QScale), Vector512.Create(QShift));
        var q = Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Vector512.Create(Q10), v, Q9), v, Q8), v, Q7), v, Q6), v, Q5), v, Q4), v, Q3), v, Q2), v, Q1), v, Q0);
        var large = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(Tail)), Vector512<float>.One - Exp(q), Vector512<float>.One);
        // NaN fails a >= 1 and keeps small, which is NaN. Then copy x's sign.
        var r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, Vector512<float>.One), large, small);
        return r | (x & Vector512.Create(-0f));
    }

    /// <summary>0.5 x (1 + erf(x / sqrt 2)) as h + h erf with h = x / 2 (one rounding in the fused multiply-add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> x)
    {
        var h = x * 0.5f;
        return Vector512.FusedMultiplyAdd(h, Erf(x * InvSqrt2), h);
    }

    /// <summary>The Vector512 code at 256 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var u = Vector256.FusedMultiplyAdd(a + a, a, Vector256.Create(-1f));
        var p = Fma(Fma(Fma(Fma(Fma(Fma(Vector256.Create(A6), u, A5), u, A4), u, A3), u, A2), u, A1), u, A0);
        var small = a * p;
        var t = Vector256.MinNative(Vector256.MaxNative(a, Vector256<float>.One), Vector256.Create(Tail));
        var v = Vector256.FusedMultiplyAdd(t, Vector256.Create(QScale), Vector256.Create(QShift));
        var q = Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Fma(Vector256.Create(Q10), v, Q9), v, Q8), v, Q7), v, Q6), v, Q5), v, Q4), v, Q3), v, Q2), v, Q1), v, Q0);
        var large = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(Tail)), Vector256<float>.One - Exp(q), Vector256<float>.One);
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256<float>.One), large, small);
        return r | (x & Vector256.Create(-0f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Apply(Vector256<float> x)
    {
        var h = x * 0.5f;
        return Vector256.FusedMultiplyAdd(h, Erf(x * InvSqrt2), h);
    }

    // e^q for the large branch only, q = Q(v) in [-16.7, -1.8]. Vector512.Exp / Vector.Exp are vectorized on .NET 10
    // but widen to double (~0.6-0.9 ns per float here, as much as the whole GELU should cost), so: q = n ln 2 + r with
    // |r| <= ln 2 / 2 (ln 2 split in two floats, the first product exact inside the fused multiply-add), e^r by its
    // Taylor series to r^7 (truncation below 5.3e-9 relative, a tenth of an ulp), 2^n from the exponent bits
    // (n in [-24, -3]: no overflow, underflow or NaN to handle). About 1 ulp; erf's error from it is erfc(x) times that.
    private const float Log2E = 1.44269502f, Ln2Hi = 0.693147182f, Ln2Lo = -1.90465421e-9f;
    private const float E3 = 1f / 6, E4 = 1f / 24, E5 = 1f / 120, E6 = 1f / 720, E7 = 1f / 5040;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp(Vector512<float> q)
    {
        var n = Vector512.Round(q * Log2E);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), q));
        var e = Fma(Fma(Fma(Fma(Fma(Fma(Fma(Vector512.Create(E7), r, E6), r, E5), r, E4), r, E3), r, 0.5f), r, 1f), r, 1f);
        return e * Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(127), 23).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp(Vector256<float> q)
    {
        var n = Vector256.Round(q * Log2E);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), q));
        var e = Fma(Fma(Fma(Fma(Fma(Fma(Fma(Vector256.Create(E7), r, E6), r, E5), r, E4), r, E3), r, 0.5f), r, 1f), r, 1f);
        return e * Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n) + Vector256.Create(127), 23).AsSingle();
    }

    /// <summary>a x + c: one Horner step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> x, float c) => Vector512.FusedMultiplyAdd(a, x, Vector512.Create(c));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<float> a, Vector256<float> x, float c) => Vector256.FusedMultiplyAdd(a, x, Vector256.Create(c));

    /// <summary>erf in float64 for the references: (2/sqrt pi) e^(-x^2) sum_n x (2x^2)^n / (2n+1)!! (all terms positive, no cancellation).</summary>
    public static double ErfReference(double x)
    {
        if (double.IsNaN(x)) return x;
        double a = Math.Abs(x);
        if (a >= 6.5) return Math.Sign(x); // erfc(6.5) < 4e-20
        double term = a, sum = a, twoX2 = 2 * a * a;
        for (int n = 1; term > 1e-17 * sum; n++)
        {
            term *= twoX2 / (2 * n + 1);
            sum += term;
        }
        double r = 2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum;
        return x < 0 ? -r : r;
    }

    public static double Reference(double x) => 0.5 * x * (1 + ErfReference(x / Math.Sqrt(2)));
}
