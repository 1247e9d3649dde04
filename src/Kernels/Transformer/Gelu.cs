using System.Numerics;
using System.Runtime.CompilerServices;
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

    /// <summary>erf of each lane, the same formula as <see cref="Erf(float)"/> (both branches, then a select).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Erf(Vector<float> x)
    {
        var a = Vector.Abs(x);
        var u = 2f * a * a - Vector<float>.One;
        var small = a * (new Vector<float>(A0) + u * (new Vector<float>(A1) + u * (new Vector<float>(A2) + u * (new Vector<float>(A3)
            + u * (new Vector<float>(A4) + u * (new Vector<float>(A5) + u * A6))))));
        var v = Vector.Min(a, new Vector<float>(Tail)) * QScale + new Vector<float>(QShift);
        var q = new Vector<float>(Q0) + v * (new Vector<float>(Q1) + v * (new Vector<float>(Q2) + v * (new Vector<float>(Q3)
            + v * (new Vector<float>(Q4) + v * (new Vector<float>(Q5) + v * (new Vector<float>(Q6) + v * (new Vector<float>(Q7)
            + v * (new Vector<float>(Q8) + v * (new Vector<float>(Q9) + v * Q10)))))))));
        var large = Vector<float>.One - Vector.Exp(q);
        var r = Vector.ConditionalSelect(Vector.LessThan(a, Vector<float>.One), small,
            Vector.ConditionalSelect(Vector.LessThan(a, new Vector<float>(Tail)), large, Vector<float>.One));
        // NaN: every comparison above is false, so r = 1; put the NaN back. Then copy x's sign.
        r = Vector.ConditionalSelect(Vector.Equals(a, a), r, a);
        return Vector.BitwiseOr(r, Vector.BitwiseAnd(x, new Vector<float>(-0f)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Apply(Vector<float> x) =>
        new Vector<float>(0.5f) * x * (Vector<float>.One + Erf(x * InvSqrt2));

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
