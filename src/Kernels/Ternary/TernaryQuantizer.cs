namespace GpuAnomaly.Kernels.Ternary;

/// <summary>Granularity of the ternary weight scale gamma.</summary>
public enum TernaryScale
{
    /// <summary>One gamma for the whole matrix (BitNet b1.58).</summary>
    Tensor = 0,
    /// <summary>One gamma per output row (output channel).</summary>
    Row = 1,
}

/// <summary>Ternary values [rows, K] in {-1, 0, +1} and their scales (1 or rows values): W ~ scale * values.</summary>
public sealed record TernaryWeights(sbyte[] Values, float[] Scales, int Rows, int K)
{
    public TernaryScale Scale => Scales.Length == 1 ? TernaryScale.Tensor : TernaryScale.Row;
    public uint[] Pack() => TernaryPacking.Pack(Values, Rows, K);
    /// <summary>gamma for row r.</summary>
    public float ScaleOf(int r) => Scales.Length == 1 ? Scales[0] : Scales[r];
}

/// <summary>
/// BitNet b1.58's absmean quantizer (METHODS.md §3): gamma = mean |W| (over the matrix, or over
/// each row), W_t = clamp(round(W / max(gamma, 1e-5)), -1, 1), rounding half to even as
/// torch.round does. The division is done in float32 like PyTorch's, so that our values equal
/// those of tools/export's quantizer bit for bit; gamma is summed in float64 and then rounded.
/// </summary>
public static class TernaryQuantizer
{
    public const float MinGamma = 1e-5f;

    public static TernaryWeights Quantize(ReadOnlySpan<float> w, int rows, int k, TernaryScale scale)
    {
        if (rows < 1 || k < 1 || w.Length != (long)rows * k)
            throw new ArgumentException($"ternary quantize: {w.Length} weights do not form [{rows}, {k}]");
        var values = new sbyte[w.Length];
        float[] scales;
        if (scale == TernaryScale.Tensor)
        {
            float gamma = AbsMean(w);
            scales = [gamma];
            Round(w, values, gamma);
        }
        else
        {
            scales = new float[rows];
            for (int r = 0; r < rows; r++)
            {
                var row = w.Slice(r * k, k);
                scales[r] = AbsMean(row);
                Round(row, values.AsSpan(r * k, k), scales[r]);
            }
        }
        return new TernaryWeights(values, scales, rows, k);
    }

    /// <summary>||W - gamma W_t|| / ||W|| in float64 (the quantize command's weight error).</summary>
    public static double RelativeError(ReadOnlySpan<float> w, TernaryWeights t)
    {
        double num = 0, den = 0;
        for (int r = 0; r < t.Rows; r++)
        {
            double g = t.ScaleOf(r);
            for (int c = 0; c < t.K; c++)
            {
                int i = r * t.K + c;
                double d = w[i] - g * t.Values[i];
                num += d * d;
                den += (double)w[i] * w[i];
            }
        }
        return den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den);
    }

    private static float AbsMean(ReadOnlySpan<float> w)
    {
        double s = 0;
        foreach (float v in w)
        {
            if (!float.IsFinite(v)) throw new ArgumentException($"ternary quantize: weight {v} is not finite");
            s += Math.Abs(v);
        }
        return (float)(s / w.Length);
    }

    private static void Round(ReadOnlySpan<float> w, Span<sbyte> values, float gamma)
    {
        float g = MathF.Max(gamma, MinGamma);
        for (int i = 0; i < w.Length; i++)
            values[i] = (sbyte)Math.Clamp(MathF.Round(w[i] / g, MidpointRounding.ToEven), -1f, 1f);
    }
}
