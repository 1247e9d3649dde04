using GpuAnomaly.Kernels.Attention;

namespace GpuAnomaly.Tests.Attention;

/// <summary>Random inputs of one attention case and their float64 reference output.</summary>
internal sealed class WindowAttentionCase
{
    public required WindowAttentionParams P { get; init; }
    public required float[] Qkv { get; init; }
    public required float[] PadQkv { get; init; }
    public required float[] Bias { get; init; }
    public required double[] Expected { get; init; }

    public static WindowAttentionCase Create(WindowAttentionParams p, Random rng)
    {
        p.Validate();
        var qkv = KernelLab.RandomFloats(rng, p.QkvElements);
        // The padding token (the qkv bias in timm) is given whenever the map is padded, and sometimes when it is not.
        var pad = p.NeedsPadding || rng.Next(2) == 0 ? KernelLab.RandomFloats(rng, 3 * p.Channels) : [];
        var bias = KernelLab.RandomFloats(rng, p.BiasElements);
        var expected = new double[p.OutputElements];
        WindowAttentionReference.Forward(p, qkv, pad, bias, expected);
        return new WindowAttentionCase { P = p, Qkv = qkv, PadQkv = pad, Bias = bias, Expected = expected };
    }

    /// <summary>
    /// Case i of a sweep: alternates window and sparse grouping, cycles head dim 32 / 64 / odd small (when allowed),
    /// ws 4/7/8 with shift and bias on and off, S 1/2/4, map sides mostly not multiples of ws or S, batch 1 and 2..3.
    /// </summary>
    public static WindowAttentionParams RandomParams(Random rng, int i, bool smallDims)
    {
        int heads = rng.Next(1, 9);
        int d = ((i / 2) % 3) switch
        {
            0 => smallDims ? rng.Next(4, 17) : 32,
            1 => smallDims ? 2 * rng.Next(2, 9) : 64,
            _ => 2 * rng.Next(0, 9) + 1,
        };
        int batch = i % 3 == 0 ? 1 : rng.Next(2, 4);
        if (i % 2 == 0)
        {
            int ws = new[] { 4, 7, 8 }[(i / 2) % 3 == 2 ? rng.Next(3) : (i / 6) % 3];
            int shift = (i / 4) % 2 == 1 ? ws / 2 : 0;
            bool bias = (i / 8) % 2 == 0;
            int h = rng.Next(ws / 2 + 1, 2 * ws + 3), w = rng.Next(ws / 2 + 1, 2 * ws + 3);
            if (heads * d > 128) heads = Math.Max(1, 128 / d);
            return WindowAttentionParams.Window(batch, h, w, heads, d, ws, shift, bias);
        }
        int s = new[] { 1, 2, 4 }[(i / 2 + i / 6) % 3]; // every (S, d) pair within 18 cases
        int max = s == 1 ? 11 : 6 * s;
        if (heads * d > 96) heads = Math.Max(1, 96 / d);
        return WindowAttentionParams.Sparse(batch, rng.Next(s, max + 1), rng.Next(s, max + 1), heads, d, s);
    }
}
