using GpuAnomaly.Kernels.Attention;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>
    /// Window attention in its four regimes per case: Swin windows without and with the cyclic shift, SparseViT groups
    /// (S &gt; 1) and global attention (S = 1). Map sides are drawn freely, so most maps are padded and take padQkv.
    /// </summary>
    private static void CheckWindowAttention(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        for (int i = 0; i < cases; i++)
        {
            foreach (var kernel in new[] { "window_attention", "window_attention.shifted", "window_attention.sparse", "window_attention.global" })
            {
                var p = RandomAttention(rng, kernel, small);
                progress?.Invoke($"{kernel} {p}");
                var qkv = Floats(rng, p.QkvElements);
                // The padding token (timm's qkv bias) is required on a padded map, and allowed on any other.
                var pad = p.NeedsPadding || rng.Next(2) == 0 ? Floats(rng, 3 * p.Channels) : [];
                var table = Floats(rng, p.BiasElements);
                var expected = new double[p.OutputElements];
                WindowAttentionReference.Forward(p, qkv, pad, table, expected);
                using var qt = Upload(device, qkv);
                using var pt = pad.Length > 0 ? Upload(device, pad) : null;
                using var tt = table.Length > 0 ? Upload(device, table) : null;
                var actual = Poisoned(device, p.OutputElements, y => device.WindowAttention(p, qt, pt, tt, y));
                results.Add(new(kernel, $"{p} pad={(pt is null ? 0 : 1)}", RelL2(actual, expected), Tolerance));
            }
        }
    }

    /// <summary>
    /// Head dims 1 to 64 (the GPU kernel's limit; 32 and 64 often, as in Swin and ViT), windows 1 to 8 (4, 7 and 8
    /// often), shifts ws/2 or any other in [1, ws), relative bias on and off, S up to 4 (small) or 8, batch 1 to 3.
    /// The work (QK^T and PV over every group and head) is bounded for the float64 reference and the emulator.
    /// </summary>
    private static WindowAttentionParams RandomAttention(Random rng, string kernel, bool small)
    {
        while (true)
        {
            int d = rng.Next(3) switch { 0 => 32, 1 => 64, _ => rng.Next(1, 65) };
            int heads = rng.Next(1, Math.Clamp((small ? 64 : 512) / d, 1, 12) + 1);
            int batch = rng.Next(3) == 0 ? rng.Next(2, 4) : 1;
            int maxSide = small ? 12 : 57;
            WindowAttentionParams p;
            switch (kernel)
            {
                case "window_attention":
                case "window_attention.shifted":
                    bool shifted = kernel.EndsWith("shifted", StringComparison.Ordinal);
                    int ws = rng.Next(3) == 0 ? rng.Next(shifted ? 2 : 1, 9) : new[] { 4, 7, 8 }[rng.Next(3)];
                    int shift = !shifted ? 0 : rng.Next(2) == 0 ? ws / 2 : rng.Next(1, ws);
                    p = WindowAttentionParams.Window(batch, rng.Next(1, maxSide), rng.Next(1, maxSide), heads, d, ws, shift, rng.Next(2) == 0);
                    break;
                case "window_attention.sparse":
                    int s = rng.Next(2, small ? 5 : 9);
                    p = WindowAttentionParams.Sparse(batch, rng.Next(s, maxSide), rng.Next(s, maxSide), heads, d, s);
                    break;
                default:
                    p = WindowAttentionParams.Sparse(batch, rng.Next(1, small ? 9 : 25), rng.Next(1, small ? 9 : 25), heads, d, 1);
                    break;
            }
            if (p.Flops <= (small ? 2_000_000 : 100_000_000)) return p;
        }
    }
}
