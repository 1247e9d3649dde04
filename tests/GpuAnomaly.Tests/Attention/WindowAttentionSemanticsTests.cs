using GpuAnomaly.Kernels.Attention;
using Xunit;

namespace GpuAnomaly.Tests.Attention;

/// <summary>
/// Pins down what the reference means with a tiny shifted case (2 heads, 5x5 map, ws 4, shift 2, padded to 8x8)
/// computed here the way timm's SwinTransformerBlock and WindowAttention write it, tensor op by tensor op: pad,
/// torch.roll, window_partition, relative_position_index from a meshgrid, img_mask from slices, attention, window_reverse,
/// roll back, crop.
/// </summary>
public class WindowAttentionSemanticsTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(0)]
    public void Reference_MatchesTimmStepByStep(int shift)
    {
        const int heads = 2, d = 3, ws = 4, h = 5, w = 5, b = 2;
        var p = WindowAttentionParams.Window(b, h, w, heads, d, ws, shift);
        var rng = KernelLab.NewRng(out int seed);
        var qkv = KernelLab.RandomFloats(rng, p.QkvElements, 2f);
        var pad = KernelLab.RandomFloats(rng, 3 * p.Channels);
        var table = KernelLab.RandomFloats(rng, p.BiasElements);

        var expected = TimmSteps(qkv, pad, table, b, h, w, heads, d, ws, shift);
        var reference = new double[p.OutputElements];
        WindowAttentionReference.Forward(p, qkv, pad, table, reference);
        for (int i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - expected[i]) <= 1e-12, $"element {i}: {reference[i]} vs {expected[i]}, seed {seed}");
        var y = new float[p.OutputElements];
        KernelLab.Poison(y);
        WindowAttentionCpu.Forward(p, qkv, pad, table, y);
        KernelLab.AssertClose(y, expected, 1e-5, $"fused cpu, seed {seed}");
    }

    private static double[] TimmSteps(float[] qkv, float[] pad, float[] table, int batch, int h, int w, int heads, int d, int ws, int shift)
    {
        int c = heads * d, c3 = 3 * c;
        int hp = (h + ws - 1) / ws * ws, wp = (w + ws - 1) / ws * ws, n = ws * ws;
        int nWx = wp / ws, nW = (hp / ws) * nWx;

        // relative_position_index: coords = stack(meshgrid(arange(ws), arange(ws))).flatten(1);
        // rel = coords[:, :, None] - coords[:, None, :]; rel += ws - 1; rel[0] *= 2ws - 1; index = rel.sum(0).
        var index = new int[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                index[i, j] = (i / ws - j / ws + ws - 1) * (2 * ws - 1) + (i % ws - j % ws + ws - 1);

        // img_mask on Hp x Wp from Python slices; mask_windows = window_partition(img_mask); -100 where labels differ.
        var img = new int[hp, wp];
        var slicesH = new[] { (0, -ws), (-ws, -shift), (-shift, int.MaxValue) };
        var slicesW = slicesH;
        int cnt = 0;
        foreach (var (h0, h1) in slicesH)
            foreach (var (w0, w1) in slicesW)
            {
                for (int y = PySlice(h0, hp); y < PySlice(h1, hp); y++)
                    for (int x = PySlice(w0, wp); x < PySlice(w1, wp); x++)
                        img[y, x] = cnt;
                cnt++;
            }

        var result = new double[(long)batch * h * w * c];
        for (int b = 0; b < batch; b++)
        {
            // F.pad with the padded tokens' qkv (the Linear of a zero token = its bias).
            var padded = new double[hp, wp, c3];
            for (int y = 0; y < hp; y++)
                for (int x = 0; x < wp; x++)
                    for (int k = 0; k < c3; k++)
                        padded[y, x, k] = y < h && x < w ? qkv[((b * h + y) * w + x) * c3 + k] : pad[k];
            var rolled = Roll(padded, -shift, hp, wp, c3);
            var outRolled = new double[hp, wp, c];
            for (int win = 0; win < nW; win++)
            {
                int oy = win / nWx * ws, ox = win % nWx * ws;
                for (int head = 0; head < heads; head++)
                    for (int i = 0; i < n; i++)
                    {
                        var attn = new double[n];
                        for (int j = 0; j < n; j++)
                        {
                            double s = 0;
                            for (int e = 0; e < d; e++)
                                s += rolled[oy + i / ws, ox + i % ws, head * d + e] * Math.Pow(d, -0.5)
                                     * rolled[oy + j / ws, ox + j % ws, c + head * d + e];
                            s += table[index[i, j] * heads + head];
                            if (shift > 0 && img[oy + i / ws, ox + i % ws] != img[oy + j / ws, ox + j % ws]) s -= 100;
                            attn[j] = s;
                        }
                        double max = attn.Max(), sum = attn.Sum(a => Math.Exp(a - max));
                        for (int e = 0; e < d; e++)
                        {
                            double o = 0;
                            for (int j = 0; j < n; j++) o += Math.Exp(attn[j] - max) / sum * rolled[oy + j / ws, ox + j % ws, 2 * c + head * d + e];
                            outRolled[oy + i / ws, ox + i % ws, head * d + e] = o;
                        }
                    }
            }
            var back = Roll(outRolled, shift, hp, wp, c);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int k = 0; k < c; k++)
                        result[((b * h + y) * w + x) * c + k] = back[y, x, k];
        }
        return result;
    }

    /// <summary>torch.roll(x, (k, k), dims=(0, 1)): out[(y + k) mod H, (x + k) mod W] = x[y, x].</summary>
    private static double[,,] Roll(double[,,] x, int k, int hp, int wp, int ch)
    {
        var o = new double[hp, wp, ch];
        for (int y = 0; y < hp; y++)
            for (int xx = 0; xx < wp; xx++)
                for (int e = 0; e < ch; e++)
                    o[((y + k) % hp + hp) % hp, ((xx + k) % wp + wp) % wp, e] = x[y, xx, e];
        return o;
    }

    /// <summary>A Python slice bound: negative counts from the end, int.MaxValue is None; -0 is 0.</summary>
    private static int PySlice(int i, int size) => i == int.MaxValue ? size : i < 0 ? size + i : i;
}
