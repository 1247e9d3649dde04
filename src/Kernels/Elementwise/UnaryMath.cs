using ILGPU;
using ILGPU.Algorithms;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>
/// The unary ONNX functions in float for the GPU kernels, by the engine's UnaryKind numbers (see <see cref="Codes"/>);
/// each follows the engine's NdMath.Unary definition (its float64 form is the tests' reference). Only XMath functions
/// that are one PTX instruction are used (exp, log, sqrt: ex2 / lg2 / sqrt approximations good to a few ulps): on
/// CUDA, XMath.Tan / Asin / Acos / Atan are CORDIC loops with local memory, Sin / Cos are sin.approx (absolute error
/// 2^-21 on [-pi, pi] only), Tanh is tanh.approx (relative error 2^-11), and XMath lacks the inverse hyperbolic
/// functions. Those are written here, the same arithmetic on the CPU emulator (which the tests run) as on CUDA.
/// </summary>
public static class UnaryMath
{
    /// <summary>
    /// Codes 0 Identity, 1 Neg, 2 Abs, 3 Sqrt, 4 Exp, 5 Log, 6 Sigmoid, 7 Tanh, 8 Erf, 9 Reciprocal, 10 Floor, 11 Ceil,
    /// 12 Round, 13 Sign, 14 Clip, 15 Relu, 16 LeakyRelu, 17 Elu, 18 Selu, 19 HardSigmoid, 20 HardSwish, 21 Softplus,
    /// 22 Softsign, 23 Sin, 24 Cos, 25 Tan, 26 Asin, 27 Acos, 28 Atan, 29 Sinh, 30 Cosh, 31 Asinh, 32 Acosh, 33 Atanh,
    /// 34 Mish, 35 Gelu, 36 ThresholdedRelu, 37 Celu, 38 ToFloat16, 39 ToBFloat16.
    /// </summary>
    public const int Codes = 40;

    public static float Apply(int code, float v, float alpha, float beta) => code switch
    {
        0 => v,
        1 => -v,
        2 => XMath.Abs(v),
        3 => XMath.Sqrt(v),
        4 => XMath.Exp(v),
        5 => XMath.Log(v),
        6 => v >= 0f ? 1f / (1f + XMath.Exp(-v)) : XMath.Exp(v) / (1f + XMath.Exp(v)),
        7 => Tanh(v),
        8 => Transformer.Gelu.Erf(v),
        9 => 1f / v,
        10 => XMath.Floor(v),
        11 => XMath.Ceiling(v),
        12 => XMath.RoundToEven(v),
        13 => float.IsNaN(v) ? v : v > 0f ? 1f : v < 0f ? -1f : 0f,
        14 => float.IsNaN(v) ? v : XMath.Min(XMath.Max(v, alpha), beta),
        15 => v > 0f || float.IsNaN(v) ? v : 0f,
        16 => v < 0f ? v * alpha : v,
        17 => v < 0f ? alpha * (XMath.Exp(v) - 1f) : v,
        18 => beta * (v <= 0f ? alpha * (XMath.Exp(v) - 1f) : v),
        19 => XMath.Max(0f, XMath.Min(1f, alpha * v + beta)),
        20 => v * XMath.Max(0f, XMath.Min(1f, v / 6f + 0.5f)),
        21 => Softplus(v),
        22 => v / (1f + XMath.Abs(v)),
        23 or 24 or 25 => Trig(code - 23, v),
        26 => Atan(v / XMath.Sqrt((1f - v) * (1f + v))),
        27 => 2f * Atan(XMath.Sqrt((1f - v) / (1f + v))),
        28 => Atan(v),
        29 => Sinh(v),
        30 => 0.5f * (XMath.Exp(v) + XMath.Exp(-v)),
        31 => Asinh(v),
        32 => XMath.Log(v + XMath.Sqrt(v * v - 1f)),
        33 => 0.5f * XMath.Log((1f + v) / (1f - v)),
        34 => v * Tanh(Softplus(v)),
        35 => Transformer.Gelu.Apply(v),
        36 => v > alpha ? v : 0f,
        37 => (float.IsNaN(v) ? v : XMath.Max(0f, v)) + XMath.Min(0f, alpha * (XMath.Exp(v / alpha) - 1f)),
        38 => ToFloat16(v),
        _ => float.IsNaN(v) ? v : Interop.IntAsFloat(Interop.FloatAsInt(v) & 0xFFFF0000u),
    };

    private static float Softplus(float v) => v > 20f ? v : XMath.Log(1f + XMath.Exp(v));

    // Odd symmetry keeps log(|x| + sqrt(x^2 + 1)) away from the cancellation it has for negative x.
    private static float Asinh(float v)
    {
        float a = XMath.Abs(v), r = XMath.Log(a + XMath.Sqrt(a * a + 1f));
        return v < 0f ? -r : r;
    }

    /// <summary>
    /// v rounded to the nearest float16 (ties to even), kept in float: the float16 spacing at v's exponent (that of the
    /// subnormals, 2^-24, below 2^-14) is a power of two, so v / q is exact and rounding it to an even integer is the
    /// float16 rounding; past 65504 it is infinity.
    /// </summary>
    public static float ToFloat16(float v)
    {
        if (float.IsNaN(v) || float.IsInfinity(v)) return v;
        int e = (int)((Interop.FloatAsInt(v) >> 23) & 0xFF) - 127;
        if (e < -14) e = -14;
        if (e > 16) e = 16;
        float q = Interop.IntAsFloat((uint)(e - 10 + 127) << 23);
        float r = XMath.RoundToEven(v / q) * q;
        return r > 65504f ? float.PositiveInfinity : r < -65504f ? float.NegativeInfinity : r;
    }

    /// <summary>tanh: odd series below 0.3 (where 1 - 2 / (e^2x + 1) cancels), else that form (1 past exp's range).</summary>
    private static float Tanh(float v)
    {
        float a = XMath.Abs(v), r;
        if (a < 0.3f)
        {
            float a2 = a * a;
            r = a * (1f + a2 * (-1f / 3f + a2 * (2f / 15f + a2 * (-17f / 315f + a2 * (62f / 2835f + a2 * (-1382f / 155925f))))));
        }
        else r = 1f - 2f / (XMath.Exp(2f * a) + 1f);
        return v < 0f ? -r : float.IsNaN(v) ? v : r;
    }

    /// <summary>sinh: odd series below 0.3 (where e^x - e^-x cancels), else the exponentials.</summary>
    private static float Sinh(float v)
    {
        float a = XMath.Abs(v), r;
        if (a < 0.3f)
        {
            float a2 = a * a;
            r = a * (1f + a2 * (1f / 6f + a2 * (1f / 120f + a2 * (1f / 5040f + a2 / 362880f))));
        }
        else r = 0.5f * (XMath.Exp(a) - XMath.Exp(-a));
        return v < 0f ? -r : float.IsNaN(v) ? v : r;
    }

    /// <summary>
    /// sin (which 0), cos (1) or tan (2): x = k pi/2 + r with |r| &lt;= pi/4 (the reduction in double, exact enough for
    /// |x| up to ~1e6), Taylor polynomials of sin r and cos r (error below 1e-11 there), and k's quadrant.
    /// </summary>
    private static float Trig(int which, float v)
    {
        double k = XMath.RoundToEven((double)v * 0.63661977236758134);
        float r = (float)(v - k * 1.5707963267948966);
        int q = (int)((long)k & 3);
        float r2 = r * r;
        float s = r * (1f + r2 * (-1f / 6f + r2 * (1f / 120f + r2 * (-1f / 5040f + r2 * (1f / 362880f + r2 * (-1f / 39916800f))))));
        float c = 1f + r2 * (-0.5f + r2 * (1f / 24f + r2 * (-1f / 720f + r2 * (1f / 40320f + r2 * (-1f / 3628800f + r2 / 479001600f)))));
        if (which == 2) return (q & 1) == 0 ? s / c : -c / s;
        if (which == 1) q++;
        return q == 0 || q == 4 ? s : q == 1 ? c : q == 2 ? -s : -c;
    }

    /// <summary>
    /// atan: |x| &gt; 1 by pi/2 - atan(1/x), then above tan(pi/12) by pi/6 + atan((x sqrt3 - 1) / (sqrt3 + x)), then the
    /// odd series on |t| &lt;= 0.268 (next term below 3e-9 relative).
    /// </summary>
    private static float Atan(float v)
    {
        float a = XMath.Abs(v);
        bool inv = a > 1f;
        float t = inv ? 1f / a : a, off = 0f;
        if (t > 0.26794919f)
        {
            t = (t * 1.7320508f - 1f) / (1.7320508f + t);
            off = 0.52359878f;
        }
        float t2 = t * t;
        float r = off + t * (1f + t2 * (-1f / 3f + t2 * (1f / 5f + t2 * (-1f / 7f + t2 * (1f / 9f + t2 * (-1f / 11f))))));
        if (inv) r = 1.57079633f - r;
        return v < 0f ? -r : float.IsNaN(v) ? v : r;
    }
}
