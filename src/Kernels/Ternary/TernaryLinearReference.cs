namespace GpuAnomaly.Kernels.Ternary;

/// <summary>The float64 host reference of <see cref="TernaryLinearParams"/>, and the exact integer reference of A8.</summary>
public static class TernaryLinearReference
{
    /// <summary>
    /// BitNet's per-token activation quantizer, in float32 exactly as every implementation must
    /// compute it (so that A8 accumulators agree bit for bit): s = 127 / max(max|x|, 1e-5),
    /// q = clamp(round_half_even(x * s), -128, 127). Returns s.
    /// </summary>
    public static float QuantizeToken(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float s = 127f / MathF.Max(amax, TernaryQuantizer.MinGamma);
        for (int i = 0; i < x.Length; i++)
            q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] * s, MidpointRounding.ToEven), -128f, 127f);
        return s;
    }

    /// <summary>y [M, N] in float64. A32: gamma * sum w x + b. A8: acc * gamma / s + b with acc from <see cref="AccumulateA8"/>.</summary>
    public static double[] Forward(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
    {
        Check(p, x, w, scale, bias);
        var y = new double[p.OutputElements];
        if (p.Activations == TernaryActivations.A8)
        {
            var acc = AccumulateA8(p, x, w, out var s);
            for (int m = 0; m < p.M; m++)
                for (int n = 0; n < p.N; n++)
                    y[(long)m * p.N + n] = acc[(long)m * p.N + n] * (double)scale[p.ScalePerRow != 0 ? n : 0] / s[m]
                        + (p.HasBias != 0 ? bias[n] : 0.0);
            return y;
        }
        for (int m = 0; m < p.M; m++)
        {
            var xm = x.Slice(m * p.K, p.K);
            for (int n = 0; n < p.N; n++)
            {
                var wn = w.Slice(n * p.K, p.K);
                double acc = 0;
                for (int k = 0; k < p.K; k++) acc += wn[k] * (double)xm[k];
                y[(long)m * p.N + n] = acc * scale[p.ScalePerRow != 0 ? n : 0] + (p.HasBias != 0 ? bias[n] : 0.0);
            }
        }
        return y;
    }

    /// <summary>The exact int32 accumulators of A8, [M, N], and each token's activation scale s [M].</summary>
    public static int[] AccumulateA8(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w, out float[] s)
    {
        var acc = new int[p.OutputElements];
        s = new float[p.M];
        var q = new sbyte[p.K];
        for (int m = 0; m < p.M; m++)
        {
            s[m] = QuantizeToken(x.Slice(m * p.K, p.K), q);
            for (int n = 0; n < p.N; n++)
            {
                var wn = w.Slice(n * p.K, p.K);
                long a = 0;
                for (int k = 0; k < p.K; k++) a += wn[k] * q[k];
                acc[(long)m * p.N + n] = checked((int)a);
            }
        }
        return acc;
    }

    private static void Check(in TernaryLinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<sbyte> w, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != (long)p.N * p.K || scale.Length != p.ScaleElements
            || (p.HasBias != 0 && bias.Length != p.N))
            throw new ArgumentException($"ternary_linear reference: x {x.Length}, w {w.Length}, scale {scale.Length}, bias {bias.Length} do not fit {p}");
    }
}
