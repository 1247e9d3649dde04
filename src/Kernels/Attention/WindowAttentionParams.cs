namespace GpuAnomaly.Kernels.Attention;

/// <summary>How the H x W token map is cut into groups that attend among themselves.</summary>
public enum AttentionGrouping
{
    /// <summary>Swin: ws x ws blocks of neighbours, optionally cyclically shifted, with a relative position bias.</summary>
    Window = 0,
    /// <summary>SparseViT: group (u, v) = tokens (i*S+u, j*S+v), i.e. tokens S apart; S = 1 is global attention.</summary>
    Sparse = 1,
}

/// <summary>
/// Multi-head attention inside groups of tokens of a [B, H*W] token map (METHODS.md §4):
/// out_i = sum_j softmax_j(q_i . k_j + bias_ij + mask_ij) v_j with q already scaled by d^-0.5 (timm: q = q * scale).
/// <para>
/// Input <c>qkv</c>: the qkv Linear's output [B, H*W, 3C] in timm's layout, C = Heads * HeadDim: q = channels [0, C),
/// k = [C, 2C), v = [2C, 3C), head h = channels [h*d, (h+1)*d) of each. Output <c>y</c>: [B, H*W, C] in token order,
/// head h in channels [h*d, (h+1)*d) (timm's transpose(1, 2).reshape); every element written.
/// </para>
/// <para>
/// Padding: the map is padded at the bottom and right to Hp x Wp, multiples of ws (Window) or S (Sparse). timm pads
/// the normed tokens with zeros before the qkv Linear, so a padded token's q/k/v equal the qkv bias: the kernels take
/// a <c>padQkv</c> vector [3C] used for every out-of-map token. Padded tokens are keys like any other (not masked in
/// unshifted windows, exactly as timm); their outputs are discarded. padQkv may be empty when Hp = H and Wp = W.
/// </para>
/// <para>
/// Window grouping (timm SwinTransformerBlock): with Shift &gt; 0 the PADDED map is rolled by -Shift on both axes
/// (rolled[y, x] = padded[(y + Shift) % Hp, (x + Shift) % Wp]), cut into ws x ws windows (tokens row-major inside a
/// window), and scores between tokens of different regions get -100. Regions are timm's img_mask on Hp x Wp built
/// from the slices (0, -ws), (-ws, -Shift), (-Shift, None) per axis (9 regions). The result is rolled back by +Shift.
/// Relative position bias (HasRelativeBias = 1): table [(2ws-1)^2, Heads], bias_ij = table[idx * Heads + h] with
/// idx = (dy + ws - 1)(2ws - 1) + (dx + ws - 1), dy = y_i - y_j, dx = x_i - x_j (positions inside the window).
/// Note: current timm rolls the UNPADDED map and pads afterwards; the two agree whenever H and W are multiples of ws.
/// </para>
/// <para>
/// Sparse grouping (SparseViT): the map is padded to multiples of S the same way, group (u, v) (g = u*S + v) holds the
/// padded tokens (i*S + u, j*S + v), row-major in (i, j); no bias, no mask. S = 1 is global attention.
/// </para>
/// </summary>
public struct WindowAttentionParams
{
    public int B, H, W;
    public int Heads, HeadDim;
    public AttentionGrouping Grouping;
    /// <summary>ws (Window grouping only).</summary>
    public int WindowSize;
    /// <summary>Cyclic shift, 0 or (Swin) ws/2; any value in [0, ws) is accepted (Window grouping only).</summary>
    public int Shift;
    /// <summary>S (Sparse grouping only).</summary>
    public int Sparsity;
    /// <summary>1: add the relative position bias table (Window grouping only).</summary>
    public int HasRelativeBias;

    public static WindowAttentionParams Window(int b, int h, int w, int heads, int headDim, int windowSize, int shift = 0, bool relativeBias = true) => new()
    {
        B = b, H = h, W = w, Heads = heads, HeadDim = headDim, Grouping = AttentionGrouping.Window,
        WindowSize = windowSize, Shift = shift, Sparsity = 1, HasRelativeBias = relativeBias ? 1 : 0,
    };

    public static WindowAttentionParams Sparse(int b, int h, int w, int heads, int headDim, int sparsity) => new()
    {
        B = b, H = h, W = w, Heads = heads, HeadDim = headDim, Grouping = AttentionGrouping.Sparse,
        WindowSize = 1, Shift = 0, Sparsity = sparsity, HasRelativeBias = 0,
    };

    /// <summary>C = Heads * HeadDim.</summary>
    public readonly int Channels => Heads * HeadDim;
    /// <summary>The padding multiple: ws or S.</summary>
    public readonly int Unit => Grouping == AttentionGrouping.Window ? WindowSize : Sparsity;
    public readonly int PaddedH => (H + Unit - 1) / Unit * Unit;
    public readonly int PaddedW => (W + Unit - 1) / Unit * Unit;
    public readonly bool NeedsPadding => PaddedH != H || PaddedW != W;
    /// <summary>Groups per image: (Hp/ws)(Wp/ws) windows or S*S sparse groups.</summary>
    public readonly int GroupsPerImage => Grouping == AttentionGrouping.Window
        ? (PaddedH / WindowSize) * (PaddedW / WindowSize) : Sparsity * Sparsity;
    /// <summary>Tokens per group: ws*ws or (Hp/S)(Wp/S).</summary>
    public readonly int GroupSize => Grouping == AttentionGrouping.Window
        ? WindowSize * WindowSize : (PaddedH / Sparsity) * (PaddedW / Sparsity);
    public readonly int Tokens => H * W;
    public readonly long QkvElements => (long)B * H * W * 3 * Channels;
    public readonly long OutputElements => (long)B * H * W * Channels;
    /// <summary>(2ws-1)^2 * Heads when HasRelativeBias, else 0.</summary>
    public readonly int BiasElements => HasRelativeBias != 0 ? (2 * WindowSize - 1) * (2 * WindowSize - 1) * Heads : 0;
    /// <summary>d^-0.5.</summary>
    public readonly float Scale => 1f / MathF.Sqrt(HeadDim);
    /// <summary>QK^T and PV over all groups and heads, counting padded tokens: 4 G^2 d per group and head.</summary>
    public readonly double Flops => 4.0 * B * GroupsPerImage * Heads * GroupSize * (double)GroupSize * HeadDim;

    /// <summary>
    /// The map token (y * W + x) at position t (row-major) of group g, or -1 for a padded token. Used by every
    /// fused implementation (the float64 reference rolls and pads explicitly instead).
    /// </summary>
    public readonly int SourceToken(int g, int t)
    {
        int py, px;
        if (Grouping == AttentionGrouping.Window)
        {
            int ws = WindowSize, hp = PaddedH, wp = PaddedW;
            int gy = g / (wp / ws), gx = g - gy * (wp / ws);
            int wy = t / ws, wx = t - wy * ws;
            // Window position in the rolled map -> position in the padded map (rolled by -Shift).
            py = gy * ws + wy + Shift;
            px = gx * ws + wx + Shift;
            if (py >= hp) py -= hp;
            if (px >= wp) px -= wp;
        }
        else
        {
            int s = Sparsity, cols = PaddedW / s;
            int u = g / s, v = g - u * s;
            int i = t / cols, j = t - i * cols;
            py = i * s + u;
            px = j * s + v;
        }
        return py < H && px < W ? py * W + px : -1;
    }

    /// <summary>Swin's shift region (0..8) of position t of window g, in the rolled padded map; 0 when Shift = 0.</summary>
    public readonly int Region(int g, int t)
    {
        if (Shift == 0) return 0;
        int ws = WindowSize, hp = PaddedH, wp = PaddedW;
        int gy = g / (wp / ws), gx = g - gy * (wp / ws);
        int wy = t / ws, wx = t - wy * ws;
        int y = gy * ws + wy, x = gx * ws + wx;
        int ry = y < hp - ws ? 0 : y < hp - Shift ? 1 : 2;
        int rx = x < wp - ws ? 0 : x < wp - Shift ? 1 : 2;
        return ry * 3 + rx;
    }

    /// <summary>Row of the relative position bias table for window positions i (query) and j (key).</summary>
    public readonly int RelativeIndex(int i, int j)
    {
        int ws = WindowSize;
        int yi = i / ws, yj = j / ws;
        return (yi - yj + ws - 1) * (2 * ws - 1) + (i - yi * ws) - (j - yj * ws) + ws - 1;
    }

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (B < 1 || H < 1 || W < 1 || Heads < 1 || HeadDim < 1)
            throw new ArgumentException($"window_attention: sizes must be positive ({this})");
        if (Grouping == AttentionGrouping.Window)
        {
            if (WindowSize < 1)
                throw new ArgumentException($"window_attention: window size must be >= 1 ({this})");
            if (Shift < 0 || Shift >= WindowSize)
                throw new ArgumentException($"window_attention: shift must be in [0, ws) ({this})");
            if (HasRelativeBias is not (0 or 1))
                throw new ArgumentException($"window_attention: HasRelativeBias must be 0 or 1 ({this})");
        }
        else if (Grouping == AttentionGrouping.Sparse)
        {
            if (Sparsity < 1)
                throw new ArgumentException($"window_attention: sparsity must be >= 1 ({this})");
            if (Shift != 0 || HasRelativeBias != 0)
                throw new ArgumentException($"window_attention: sparse groups have no shift and no bias ({this})");
        }
        else throw new ArgumentException($"window_attention: unknown grouping ({this})");
        if (QkvElements > int.MaxValue || (long)B * GroupsPerImage * GroupSize * Heads > int.MaxValue)
            throw new ArgumentException($"window_attention: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks the buffer lengths shared by every implementation.</summary>
    public readonly void CheckLengths(long qkv, long padQkv, long biasTable, long y)
    {
        Validate();
        if (qkv != QkvElements)
            throw new ArgumentException($"window_attention: qkv has {qkv} elements, expected {QkvElements} = B*H*W*3C ({this})");
        if (y != OutputElements)
            throw new ArgumentException($"window_attention: output has {y} elements, expected {OutputElements} = B*H*W*C ({this})");
        if (padQkv != 3 * Channels && !(padQkv == 0 && !NeedsPadding))
            throw new ArgumentException($"window_attention: padQkv has {padQkv} elements, expected 3C = {3 * Channels} (the map is padded to {PaddedH}x{PaddedW}) ({this})");
        if (biasTable != BiasElements)
            throw new ArgumentException($"window_attention: relative bias table has {biasTable} elements, expected {BiasElements} ({this})");
    }

    public override readonly string ToString() =>
        $"{Grouping} B={B} H={H} W={W} heads={Heads} d={HeadDim} " +
        (Grouping == AttentionGrouping.Window ? $"ws={WindowSize} shift={Shift} bias={HasRelativeBias}" : $"S={Sparsity}");
}
