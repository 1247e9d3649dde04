using System.Buffers;
using System.Numerics.Tensors;
using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// TernaryConv2d for the `cpu` device. Convolutions are compute bound here (a 3x3 weight is reused over
/// every output pixel), so the ternary weights are decoded once into the float layout of
/// <see cref="Conv2dCpu"/>'s GEMM (values -1, 0, +1; gamma is applied in the epilogue, which A8 needs
/// anyway) and the float convolution does the work. Constant weights are decoded once by
/// <see cref="PackWeights"/>.
/// <para>
/// A8: each image is quantized to int8 values (held as floats) with one scale; products with {-1, 0, +1}
/// and sums of at most K such values are integers below 128 * K, exact in float32 while 128 * K &lt;= 2^24,
/// so the float GEMM yields A8's int32 accumulators exactly, whatever its summation order.
/// </para>
/// </summary>
public static class TernaryConv2dCpu
{
    /// <summary>Largest K whose A8 sums stay exact in float32: 128 * K &lt;= 2^24.</summary>
    public const int MaxA8K = 1 << 17;

    /// <param name="x">[N, CIn, H, W].</param>
    /// <param name="packedW">[COut, Words(K)] packed ternary weights.</param>
    /// <param name="scale">[1] or [COut].</param>
    /// <param name="bias">[COut], or empty when p.Conv.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in TernaryConv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<uint> packedW,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> y)
    {
        Check(p, x, packedW.Length, scale, bias, y);
        var w = Decode(p, packedW);
        var c = p.Conv;
        c.HasBias = 0;
        c.Act = Activation.None;
        if (p.Activations == TernaryActivations.A32) Conv2dCpu.Forward(c, x, w, default, y);
        else
        {
            var q = ArrayPool<float>.Shared.Rent((int)c.InputElements);
            var s = QuantizeImages(p, x, q);
            Conv2dCpu.Forward(c, q.AsSpan(0, (int)c.InputElements), w, default, y);
            ArrayPool<float>.Shared.Return(q);
            Finish(p, s, scale, bias, y);
            return;
        }
        Finish(p, null, scale, bias, y);
    }

    /// <summary>Decodes constant packed weights once (validating every code) for repeated cached Forward calls.</summary>
    public static Conv2dPackedWeights PackWeights(in TernaryConv2dParams p, ReadOnlySpan<uint> packedW)
    {
        p.Validate();
        if (packedW.Length != p.WeightWords)
            throw new ArgumentException($"ternary_conv2d: packed weight of {packedW.Length} words does not match {p} (expected [{p.Conv.COut}, {p.KWords}])");
        return Conv2dCpu.PackWeights(p.Conv, Decode(p, packedW));
    }

    /// <summary>Convolution with weights from <see cref="PackWeights"/>.</summary>
    public static void Forward(in TernaryConv2dParams p, ReadOnlySpan<float> x, Conv2dPackedWeights w,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(w);
        Check(p, x, p.WeightWords, scale, bias, y);
        var c = p.Conv;
        c.HasBias = 0;
        c.Act = Activation.None;
        float[]? s = null;
        if (p.Activations == TernaryActivations.A32) Conv2dCpu.Forward(c, x, w, default, y);
        else
        {
            var q = ArrayPool<float>.Shared.Rent((int)c.InputElements);
            s = QuantizeImages(p, x, q);
            Conv2dCpu.Forward(c, q.AsSpan(0, (int)c.InputElements), w, default, y);
            ArrayPool<float>.Shared.Return(q);
        }
        Finish(p, s, scale, bias, y);
    }

    private static void Check(in TernaryConv2dParams p, ReadOnlySpan<float> x, long wWords, ReadOnlySpan<float> scale,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        p.Validate();
        var c = p.Conv;
        if (x.Length != c.InputElements || wWords != p.WeightWords || scale.Length != p.ScaleElements
            || bias.Length != (c.HasBias != 0 ? c.COut : 0) || y.Length != c.OutputElements)
            throw new ArgumentException(
                $"ternary_conv2d: buffer sizes x={x.Length} w={wWords} scale={scale.Length} bias={bias.Length} y={y.Length} do not match {p} " +
                $"(expected x={c.InputElements} w=[{c.COut}, {p.KWords}] words scale={p.ScaleElements} bias={(c.HasBias != 0 ? c.COut : 0)} y={c.OutputElements})");
        if (p.Activations == TernaryActivations.A8 && p.K > MaxA8K)
            throw new ArgumentException($"ternary_conv2d: A8 with K={p.K} > {MaxA8K} would not sum exactly in float32 ({p})");
    }

    private static float[] Decode(in TernaryConv2dParams p, ReadOnlySpan<uint> packedW)
    {
        string? problem = TernaryPacking.Validate(packedW, p.Conv.COut, p.K);
        if (problem is not null) throw new ArgumentException($"ternary_conv2d: {problem} ({p})");
        var values = TernaryPacking.Unpack(packedW, p.Conv.COut, p.K);
        var w = new float[values.Length];
        for (int i = 0; i < w.Length; i++) w[i] = values[i];
        return w;
    }

    /// <summary>Per-image int8 quantization (QuantizeToken over the image's CIn*H*W values) into q; returns s [N].</summary>
    private static float[] QuantizeImages(in TernaryConv2dParams p, ReadOnlySpan<float> x, float[] q)
    {
        var c = p.Conv;
        int image = c.CIn * c.H * c.W;
        var s = new float[c.N];
        for (int n = 0; n < c.N; n++)
            s[n] = TernaryLinearCpu.QuantizeToken(x.Slice(n * image, image), q.AsSpan(n * image, image));
        return s;
    }

    /// <summary>y = acc * gamma (/ s) + bias, then the activation, per output plane.</summary>
    private static void Finish(in TernaryConv2dParams p, float[]? s, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> y)
    {
        var c = p.Conv;
        int plane = c.OutH * c.OutW;
        for (int n = 0; n < c.N; n++)
        for (int co = 0; co < c.COut; co++)
        {
            var o = y.Slice((n * c.COut + co) * plane, plane);
            float g = scale[p.ScalePerRow != 0 ? co : 0];
            float f = s is null ? g : (float)(g / (double)s[n]);
            TensorPrimitives.Multiply(o, f, o);
            if (c.HasBias != 0) TensorPrimitives.Add(o, bias[co], o);
            if (c.Act == Activation.Relu) TensorPrimitives.Max(o, 0f, o);
            else if (c.Act == Activation.LeakyRelu)
                for (int i = 0; i < o.Length; i++)
                    if (!(o[i] >= 0)) o[i] *= c.Slope;
        }
    }
}
