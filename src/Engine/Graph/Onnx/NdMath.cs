using System.Numerics;

namespace GpuAnomaly.Engine;

/// <summary>Binary elementwise functions of ONNX (numpy broadcasting).</summary>
public enum BinaryKind { Add, Sub, Mul, Div, Pow, Max, Min, Mod, Fmod, PRelu }

/// <summary>Unary elementwise functions of ONNX; Alpha / Beta carry Clip's bounds, Elu's alpha and the like.</summary>
public enum UnaryKind
{
    Identity, Neg, Abs, Sqrt, Exp, Log, Sigmoid, Tanh, Erf, Reciprocal, Floor, Ceil, Round, Sign, Clip, Relu, LeakyRelu, Elu,
    Selu, HardSigmoid, HardSwish, Softplus, Softsign, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Mish,
    Gelu, ThresholdedRelu, Celu,
    /// <summary>Cast to FLOAT16 / BFLOAT16 kept in float: the value rounded to what the type holds.</summary>
    ToFloat16, ToBFloat16,
}

/// <summary>
/// The elementwise arithmetic of ONNX ops, generic over float (the cpu ops) and double (the import-time host evaluator
/// and the tests' reference), so both run the same definition.
/// </summary>
public static class NdMath
{
    /// <summary>
    /// float32 to bfloat16 by dropping the low 16 bits, as ONNX 1.12's Cast reference and its backend-test data do
    /// (later ONNX versions round to nearest even; a value differs by at most one bfloat16 unit).
    /// </summary>
    public static float TruncateToBFloat16(float x) =>
        float.IsNaN(x) ? x : BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(x) & 0xFFFF0000u);

    /// <summary>A bfloat16 given by its bits (a UINT16 tensor of ONNX's test data) as float.</summary>
    public static float BFloat16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static T Binary<T>(BinaryKind k, T a, T b) where T : IFloatingPointIeee754<T> => k switch
    {
        BinaryKind.Add => a + b,
        BinaryKind.Sub => a - b,
        BinaryKind.Mul => a * b,
        BinaryKind.Div => a / b,
        BinaryKind.Pow => T.Pow(a, b),
        // ONNX Max/Min propagate NaN (numpy maximum).
        BinaryKind.Max => T.IsNaN(a) || T.IsNaN(b) ? T.NaN : T.Max(a, b),
        BinaryKind.Min => T.IsNaN(a) || T.IsNaN(b) ? T.NaN : T.Min(a, b),
        // fmod = 0 semantics on floats is the sign of the divisor (numpy mod); fmod = 1 is handled by the caller.
        BinaryKind.Mod => Mod(a, b),
        BinaryKind.Fmod => a % b,
        BinaryKind.PRelu => a < T.Zero ? a * b : a,
        _ => throw new ArgumentOutOfRangeException(nameof(k)),
    };

    /// <summary>
    /// numpy's mod, the divisor's sign: r = a - floor(a / b) b in one rounding (a fused multiply-add), moved onto the
    /// divisor's side when q came out one too large (a / b rounded up onto an integer; rounding is monotonic, so it is
    /// never too small). That is fmod-then-adjust to the bit, without fmod's slow library call (10x on the cpu
    /// device), while q is an integer the significand holds; past that, and for infinite b, fmod itself.
    /// a - floor(a / b) * b in three roundings can be off by b itself.
    /// </summary>
    public static T Mod<T>(T a, T b) where T : IFloatingPointIeee754<T>
    {
        T q = T.Floor(a / b);
        T r = T.Abs(q) < ExactIntegers<T>.Limit && T.IsFinite(b) ? T.FusedMultiplyAdd(-q, b, a) : a % b;
        if (r == T.Zero) return T.CopySign(T.Zero, b);
        return (r < T.Zero) != (b < T.Zero) ? r + b : r;
    }

    /// <summary>2^24 for float, 2^53 for double: below it every integer is exact, and so is q b in a fused multiply-add.</summary>
    private static class ExactIntegers<T> where T : IFloatingPointIeee754<T>
    {
        public static readonly T Limit = T.ScaleB(T.One, typeof(T) == typeof(float) ? 24 : typeof(T) == typeof(Half) ? 11 : 53);
    }

    public static T Unary<T>(UnaryKind k, T x, T alpha, T beta) where T : IFloatingPointIeee754<T>
    {
        T one = T.One, zero = T.Zero;
        return k switch
        {
            UnaryKind.Identity => x,
            UnaryKind.Neg => -x,
            UnaryKind.Abs => T.Abs(x),
            UnaryKind.Sqrt => T.Sqrt(x),
            UnaryKind.Exp => T.Exp(x),
            UnaryKind.Log => T.Log(x),
            UnaryKind.Sigmoid => x >= zero ? one / (one + T.Exp(-x)) : T.Exp(x) / (one + T.Exp(x)),
            UnaryKind.Tanh => T.Tanh(x),
            UnaryKind.Erf => Erf(x),
            UnaryKind.Reciprocal => one / x,
            UnaryKind.Floor => T.Floor(x),
            UnaryKind.Ceil => T.Ceiling(x),
            UnaryKind.Round => T.Round(x, MidpointRounding.ToEven),
            UnaryKind.Sign => T.IsNaN(x) ? x : T.CreateTruncating(T.Sign(x)),
            UnaryKind.Clip => T.IsNaN(x) ? x : T.Min(T.Max(x, alpha), beta),
            UnaryKind.Relu => x > zero ? x : T.IsNaN(x) ? x : zero,
            UnaryKind.LeakyRelu => x < zero ? x * alpha : x,
            UnaryKind.Elu => x < zero ? alpha * (T.Exp(x) - one) : x,
            UnaryKind.Celu => T.Max(zero, x) + T.Min(zero, alpha * (T.Exp(x / alpha) - one)),
            UnaryKind.Selu => beta * (x <= zero ? alpha * (T.Exp(x) - one) : x),
            UnaryKind.HardSigmoid => T.Max(zero, T.Min(one, alpha * x + beta)),
            UnaryKind.HardSwish => x * T.Max(zero, T.Min(one, x / T.CreateTruncating(6) + T.CreateTruncating(0.5))),
            UnaryKind.Softplus => x > T.CreateTruncating(20) ? x : T.Log(one + T.Exp(x)),
            UnaryKind.Softsign => x / (one + T.Abs(x)),
            UnaryKind.Sin => T.Sin(x),
            UnaryKind.Cos => T.Cos(x),
            UnaryKind.Tan => T.Tan(x),
            UnaryKind.Asin => T.Asin(x),
            UnaryKind.Acos => T.Acos(x),
            UnaryKind.Atan => T.Atan(x),
            UnaryKind.Sinh => T.Sinh(x),
            UnaryKind.Cosh => T.Cosh(x),
            UnaryKind.Asinh => T.Asinh(x),
            UnaryKind.Acosh => T.Acosh(x),
            UnaryKind.Atanh => T.Atanh(x),
            UnaryKind.Mish => x * T.Tanh(x > T.CreateTruncating(20) ? x : T.Log(one + T.Exp(x))),
            UnaryKind.Gelu => x * T.CreateTruncating(0.5) * (one + Erf(x / T.Sqrt(T.CreateTruncating(2)))),
            UnaryKind.ThresholdedRelu => x > alpha ? x : zero,
            UnaryKind.ToFloat16 => T.CreateTruncating((double)(Half)double.CreateTruncating(x)),
            UnaryKind.ToBFloat16 => T.CreateTruncating((double)TruncateToBFloat16(float.CreateTruncating(x))),
            _ => throw new ArgumentOutOfRangeException(nameof(k)),
        };
    }

    /// <summary>erf: float uses the engine's GELU erf (float accuracy), double a series / continued fraction to ~1e-15.</summary>
    public static T Erf<T>(T x) where T : IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) return T.CreateTruncating(Kernels.Transformer.Gelu.Erf(float.CreateTruncating(x)));
        return T.CreateTruncating(ErfDouble(double.CreateTruncating(x)));
    }

    public static double ErfDouble(double x)
    {
        if (double.IsNaN(x)) return x;
        double a = Math.Abs(x);
        double r;
        if (a < 2.5)
        {
            // Maclaurin series: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)); terms stay below ~20, so ~1e-15 after cancellation.
            double term = a, sum = a, a2 = a * a;
            for (int n = 1; n < 80; n++)
            {
                term *= -a2 / n;
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else if (a < 30)
        {
            // erfc by its continued fraction (Lentz), accurate where the series cancels.
            double tiny = 1e-300, f = a, c = a, d = 0;
            for (int n = 1; n < 300; n++)
            {
                double an = n / 2.0;
                d = a + an * d;
                d = d == 0 ? tiny : d;
                c = a + an / c;
                c = c == 0 ? tiny : c;
                d = 1 / d;
                double delta = c * d;
                f *= delta;
                if (Math.Abs(delta - 1) < 1e-16) break;
            }
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        else r = 1;
        return x < 0 ? -r : r;
    }
}
