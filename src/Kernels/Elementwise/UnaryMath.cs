using ILGPU;
using ILGPU.Algorithms;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>
/// The unary ONNX functions in float for the GPU kernels, by the engine's UnaryKind numbers (see <see cref="Codes"/>);
/// each follows the engine's NdMath.Unary definition (its float64 form is the tests' reference). XMath lacks the
/// inverse hyperbolic functions, so they are written with logarithms.
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
        7 => XMath.Tanh(v),
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
        23 => XMath.Sin(v),
        24 => XMath.Cos(v),
        25 => XMath.Tan(v),
        26 => XMath.Asin(v),
        27 => XMath.Acos(v),
        28 => XMath.Atan(v),
        29 => XMath.Sinh(v),
        30 => XMath.Cosh(v),
        31 => Asinh(v),
        32 => XMath.Log(v + XMath.Sqrt(v * v - 1f)),
        33 => 0.5f * XMath.Log((1f + v) / (1f - v)),
        34 => v * XMath.Tanh(Softplus(v)),
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
}
