using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Attention;

/// <summary>
/// Fused <see cref="WindowAttentionParams"/> attention for the `cpu` device, in Vector512 (16 floats; emulated by two
/// Vector256 halves where AVX-512 is missing, still correct). The work is FMA-bound: QK^T and PV of a 49-token Swin
/// window are exactly 4 n^2 d flops here, nothing padded, so everything else is kept small next to them.
/// <para>
/// Once per call, on the calling thread: the relative bias expanded to rows [heads, n, np] (np = n rounded up to whole
/// vectors, columns past n -inf so that they get no weight), the token of every group position and, with a shift,
/// every position's region. They are the same for every image, so a batch pays for them once.
/// </para>
/// <para>
/// Work items are groups with all their heads (or single heads when groups are fewer than two per thread), in
/// (batch, group) order, cut into a few contiguous ranges per thread: a Swin stage at batch 1 has 4 windows for 2
/// threads, and batch 64 pays no scheduling per window. When qkv does not fit in L2, each item first prefetches the
/// next one's scattered rows. Per head, K is transposed into K^T [d, np] by 16 x 16 register tiles and V copied into
/// [n, dp] rows (dp = d rounded up to whole vectors, zero padded) in a per-thread workspace; Q is read in place.
/// Queries go four at a time: QK^T by a register tile of four queries by up to 64 keys (16 accumulators), the keys past
/// the last whole vector (Swin's 49 = 3 x 16 + 1) as dot products rather than a mostly empty vector; then the four rows'
/// softmax side by side (scale, bias and shift mask in one FMA and select, max, polynomial exp, sum); then PV by a
/// tile of four queries by up to 64 channels, scaled by 1/sum and stored straight into token order.
/// </para>
/// </summary>
public static unsafe class WindowAttentionCpu
{
    /// <summary>Tests set this to run the paths of machines without AVX-512 (where Vector512 is emulated) on one with it.</summary>
    internal static bool ForcePortable;

    private const int Lanes = 16;
    private const int QueryBlock = 4;
    /// <summary>The widest register tile: four vectors, of keys in QK^T and of channels in PV.</summary>
    private const int TileFloats = 4 * Lanes;
    /// <summary>Below this many flops (about 10 us) waking a second thread costs more than it saves.</summary>
    private const double ParallelFlops = 8e6;
    /// <summary>Ranges of items per thread: enough to even out the cores, few enough that scheduling is not paid per item.</summary>
    private const int TasksPerThread = 4;
    /// <summary>qkv above this size comes from L3 or memory (L2 is 1-2 MB per core).</summary>
    private const long PrefetchBytes = 1 << 20;

    /// <summary>What every item reads: the call's buffers and per-call tables.</summary>
    private struct Call
    {
        public WindowAttentionParams P;
        public float* Qkv, Pad, Y;
        /// <summary>Bias row of (head h, query i) at Bias + h * BiasHeadStride + i * BiasRowStride: np floats, -inf past n.</summary>
        public float* Bias;
        public long BiasHeadStride;
        public int BiasRowStride;
        /// <summary>[groups, np] region of each position as a float, or null without a shift.</summary>
        public float* Regions;
        /// <summary>[groups, n] map token of each position, -1 for padding.</summary>
        public int* Tokens;
        /// <summary>[groups]: 1 where a group's positions span several regions (only those need the mask).</summary>
        public int* Masked;
        public int N, Np, Dp, HeadsPerItem;
    }

    public static void Forward(in WindowAttentionParams p, ReadOnlySpan<float> qkv, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> biasTable, Span<float> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        int n = p.GroupSize, np = RoundUp(n), dp = RoundUp(p.HeadDim), groups = p.GroupsPerImage, heads = p.Heads;
        bool window = p.Grouping == AttentionGrouping.Window;
        bool hasBias = window && p.HasRelativeBias != 0, shifted = window && p.Shift > 0;
        // Without a bias every row is the same: 0 for keys, -inf past n.
        long regionFloats = shifted ? (long)groups * np : 0;
        float* tables = Workspace.Tables(np + regionFloats + (long)groups * n + groups);
        fixed (float* qkvPtr = qkv, padPtr = padQkv, yPtr = y)
        {
            var call = new Call
            {
                P = p, Qkv = qkvPtr, Pad = padPtr, Y = yPtr, Bias = hasBias ? BiasRows(p, biasTable, np) : tables,
                BiasHeadStride = hasBias ? (long)n * np : 0, BiasRowStride = hasBias ? np : 0,
                Regions = shifted ? tables + np : null,
                Tokens = (int*)(tables + np + regionFloats),
                N = n, Np = np, Dp = dp,
            };
            call.Masked = call.Tokens + (long)groups * n;
            for (int j = 0; j < np; j++) tables[j] = j < n ? 0f : float.NegativeInfinity;
            MapGroups(p, call.Tokens, call.Regions, call.Masked, np);

            int threads = p.Flops < ParallelFlops ? 1 : CpuParallel.Threads;
            // An item is a group with all its heads (its qkv and output rows are then read and written whole), or
            // one head of it when there are too few groups to keep the threads busy (global attention at batch 1).
            call.HeadsPerItem = threads == 1 || (long)p.B * groups >= 2 * threads ? heads : 1;
            int items = p.B * groups * (heads / call.HeadsPerItem);
            int tasks = Math.Min(items, threads * TasksPerThread);
            if (threads == 1 || tasks == 1) RunItems(call, 0, items);
            else CpuParallel.For(0, tasks, t => RunItems(call, (int)((long)items * t / tasks), (int)((long)items * (t + 1) / tasks)));
        }
    }

    /// <summary>
    /// tokens[g, t] = <see cref="WindowAttentionParams.SourceToken"/>(g, t) and regions[g, t] = Region(g, t) (when not
    /// null), walking the groups row by row instead of dividing per position; masked[g] = 1 where a group spans several
    /// regions. The map depends on the shape alone, but costs less than looking it up.
    /// </summary>
    private static void MapGroups(in WindowAttentionParams p, int* tokens, float* regions, int* masked, int np)
    {
        int n = p.GroupSize, hp = p.PaddedH, wp = p.PaddedW, hh = p.H, ww = p.W;
        if (p.Grouping == AttentionGrouping.Window)
        {
            int ws = p.WindowSize, shift = p.Shift, g = 0;
            for (int gy = 0; gy < hp; gy += ws)
                for (int gx = 0; gx < wp; gx += ws, g++)
                {
                    int* tok = tokens + (long)g * n;
                    float* reg = regions == null ? null : regions + (long)g * np;
                    masked[g] = 0;
                    for (int wy = 0, t = 0; wy < ws; wy++)
                    {
                        // Rolled position (y, x) -> padded position (py, px) = (y + shift, x + shift) mod (Hp, Wp).
                        int y = gy + wy, py = y + shift < hp ? y + shift : y + shift - hp;
                        int ry = y < hp - ws ? 0 : y < hp - shift ? 1 : 2;
                        for (int wx = 0; wx < ws; wx++, t++)
                        {
                            int x = gx + wx, px = x + shift < wp ? x + shift : x + shift - wp;
                            tok[t] = py < hh && px < ww ? py * ww + px : -1;
                            if (reg == null) continue;
                            int rx = x < wp - ws ? 0 : x < wp - shift ? 1 : 2;
                            reg[t] = ry * 3 + rx;
                            if (reg[t] != reg[0]) masked[g] = 1;
                        }
                    }
                    if (reg != null)
                        for (int t = n; t < np; t++) reg[t] = 0f; // past n the bias row is -inf already
                }
        }
        else
        {
            int s = p.Sparsity, rows = hp / s, cols = wp / s;
            for (int u = 0; u < s; u++)
                for (int v = 0; v < s; v++)
                {
                    int g = u * s + v;
                    int* tok = tokens + (long)g * n;
                    masked[g] = 0;
                    for (int i = 0, t = 0; i < rows; i++)
                    {
                        int py = i * s + u;
                        for (int j = 0; j < cols; j++, t++)
                        {
                            int px = j * s + v;
                            tok[t] = py < hh && px < ww ? py * ww + px : -1;
                        }
                    }
                }
        }
    }

    private static int RoundUp(int x) => (x + Lanes - 1) / Lanes * Lanes;

    /// <summary>Bias rows of one table, expanded for one (ws, heads, np).</summary>
    private sealed class ExpandedBias
    {
        public int WindowSize, Heads, Np;
        public bool Complete;
        public float[] Table = [];
        /// <summary>Pinned: the rows are read through a pointer; 64-byte aligned at <see cref="Aligned"/>.</summary>
        public float[] Rows = [];
    }

    private const int ExpandedBiasEntries = 4;
    [ThreadStatic] private static ExpandedBias?[]? t_expandedBias;
    [ThreadStatic] private static int t_expandedBiasNext;

    /// <summary>
    /// The bias rows of <paramref name="table"/> from the last few tables this thread passed in, matched by their
    /// bits (a model's tables are weights: the same from call to call), else expanded into the oldest entry. Expanding
    /// costs about as much as one window head, a tenth of a batch-1 Swin block; a match costs a compare of the table.
    /// </summary>
    private static float* BiasRows(in WindowAttentionParams p, ReadOnlySpan<float> table, int np)
    {
        var cache = t_expandedBias ??= new ExpandedBias?[ExpandedBiasEntries];
        var bits = MemoryMarshal.Cast<float, int>(table);
        foreach (var e in cache)
            if (e != null && e.Complete && e.WindowSize == p.WindowSize && e.Heads == p.Heads && e.Np == np
                && bits.SequenceEqual(MemoryMarshal.Cast<float, int>(e.Table.AsSpan())))
                return Aligned(e.Rows);
        var entry = cache[t_expandedBiasNext] ??= new ExpandedBias();
        t_expandedBiasNext = (t_expandedBiasNext + 1) % ExpandedBiasEntries;
        entry.Complete = false;
        // A vector of slack past the rows (ExpandBias writes whole vectors past a row's end), its reversed table, alignment.
        int span = 2 * p.WindowSize - 1;
        long floats = (long)p.Heads * p.GroupSize * np + Lanes + span * span + Lanes + 16;
        if (entry.Rows.Length < floats) entry.Rows = GC.AllocateUninitializedArray<float>(checked((int)floats), pinned: true);
        float* rows = Aligned(entry.Rows);
        fixed (float* t = table) ExpandBias(p, t, rows, np, rows + (long)p.Heads * p.GroupSize * np + Lanes);
        (entry.WindowSize, entry.Heads, entry.Np) = (p.WindowSize, p.Heads, np);
        if (entry.Table.Length != table.Length) entry.Table = new float[table.Length];
        table.CopyTo(entry.Table);
        entry.Complete = true;
        return rows;
    }

    private static float* Aligned(float[] pinned) =>
        (float*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned)) + 63) & ~(nint)63);

    /// <summary>
    /// rows[(h * n + i) * np + j] = table[RelativeIndex(i, j) * heads + h], -inf for j in [n, np). For each head the
    /// table is first copied to <paramref name="reversed"/> [2ws-1, 2ws-1] with dx reversed: then the keys xj = 0..ws-1
    /// of key row yj for query (yi, xi) are one forward run of it, copied a vector at a time instead of one strided
    /// element at a time (a vector may run past the run: the next run, the padding or the slack overwrite or hold it).
    /// </summary>
    private static void ExpandBias(in WindowAttentionParams p, float* table, float* rows, int np, float* reversed)
    {
        int ws = p.WindowSize, span = 2 * ws - 1, heads = p.Heads, n = ws * ws;
        for (int h = 0; h < heads; h++)
        {
            for (int dy = 0; dy < span; dy++)
                for (int k = 0; k < span; k++)
                    reversed[dy * span + k] = table[(dy * span + span - 1 - k) * heads + h];
            for (int k = span * span; k < span * span + Lanes; k++) reversed[k] = 0f;
            float* row = rows + (long)h * n * np;
            for (int yi = 0; yi < ws; yi++)
                for (int xi = 0; xi < ws; xi++, row += np)
                {
                    for (int yj = 0; yj < ws; yj++)
                    {
                        float* src = reversed + (yi - yj + ws - 1) * span + ws - 1 - xi;
                        float* dst = row + yj * ws;
                        for (int k = 0; k < ws; k += Lanes) Vector512.Store(Vector512.Load(src + k), dst + k);
                    }
                    Vector512.Store(Vector512.Create(float.NegativeInfinity), row + n); // [n, np), the rest is overwritten
                }
        }
    }

    private static void RunItems(in Call call, int first, int last)
    {
        float* scratch = Workspace.Scratch((long)call.P.HeadDim * call.Np + (long)call.N * call.Dp + QueryBlock * call.Np);
        // A batch whose qkv fits in L2 stays there between items: prefetching it again only costs instructions.
        bool prefetch = call.P.QkvElements * sizeof(float) > PrefetchBytes;
        for (int item = first; item < last; item++)
        {
            if (prefetch && item + 1 < last) Prefetch(call, item + 1);
            int perImage = call.P.GroupsPerImage * (call.P.Heads / call.HeadsPerItem);
            int b = item / perImage, rest = item - b * perImage;
            int g = rest / (call.P.Heads / call.HeadsPerItem), h0 = (rest - g * (call.P.Heads / call.HeadsPerItem)) * call.HeadsPerItem;
            for (int h = h0; h < h0 + call.HeadsPerItem; h++) Attend(call, b, g, h, scratch);
        }
    }

    /// <summary>
    /// Asks for the qkv and output rows of an item into L2 while the previous item computes: at batch 64 the
    /// rows come from memory, a group's rows are scattered over the map, and the hardware prefetcher does not
    /// follow them.
    /// </summary>
    private static void Prefetch(in Call call, int item)
    {
        if (!Sse.IsSupported) return;
        ref readonly var p = ref call.P;
        int perImage = p.GroupsPerImage * (p.Heads / call.HeadsPerItem);
        int b = item / perImage, rest = item - b * perImage;
        int g = rest / (p.Heads / call.HeadsPerItem), h0 = (rest - g * (p.Heads / call.HeadsPerItem)) * call.HeadsPerItem;
        int c = p.Channels, width = call.HeadsPerItem * p.HeadDim;
        int* tokens = call.Tokens + (long)g * call.N;
        for (int t = 0; t < call.N; t++)
        {
            if (tokens[t] < 0) continue;
            long row = (long)b * p.Tokens + tokens[t];
            byte* src = (byte*)(call.Qkv + row * 3 * c + h0 * p.HeadDim), dst = (byte*)(call.Y + row * c + h0 * p.HeadDim);
            for (int part = 0; part < 3; part++, src += c * sizeof(float))
                for (int x = 0; x < width * sizeof(float) + 63; x += 64) Sse.Prefetch1(src + Math.Min(x, width * sizeof(float) - 1));
            for (int x = 0; x < width * sizeof(float) + 63; x += 64) Sse.Prefetch1(dst + Math.Min(x, width * sizeof(float) - 1));
        }
    }

    /// <summary>One (batch, group, head): pointers and sizes its query blocks share.</summary>
    private struct Item
    {
        public float* Image, Pad, Out, KT, V, S, Bias, Regions;
        public int* Tokens;
        public int N, Np, Dp, D, C, C3, HeadOffset, BiasRowStride;
        /// <summary>Keys [0, VectorKeys) come from K^T a vector at a time; the last TailKeys (if any) by dot products.</summary>
        public int VectorKeys, TailKeys;
        public float Scale;
        /// <summary>AVX-512 shuffles for K^T and vscalefps in exp (else element copies and exponent bits).</summary>
        public bool Avx512;
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Attend(in Call k, int b, int g, int h, float* scratch)
    {
        int n = k.N, np = k.Np, dp = k.Dp, d = k.P.HeadDim, c = k.P.Channels, c3 = 3 * c;
        // A few keys past the last whole vector cost d/16 FMAs and a horizontal sum each as dot products, d FMAs
        // per query as one more (mostly empty) vector of K^T: Swin's 49 = 3 x 16 + 1 keys take the dot.
        int tail = n % Lanes;
        if (tail * (d / Lanes + 8) >= d) tail = 0;
        var it = new Item
        {
            Image = k.Qkv + (long)b * k.P.Tokens * c3, Pad = k.Pad, Out = k.Y + (long)b * k.P.Tokens * c + h * d,
            KT = scratch, V = scratch + (long)d * np, S = scratch + (long)d * np + (long)n * dp,
            Bias = k.Bias + h * k.BiasHeadStride, BiasRowStride = k.BiasRowStride,
            Regions = k.Regions != null && k.Masked[g] != 0 ? k.Regions + (long)g * np : null,
            Tokens = k.Tokens + (long)g * n,
            N = n, Np = np, Dp = dp, D = d, C = c, C3 = c3, HeadOffset = h * d,
            VectorKeys = tail > 0 ? n - tail : np, TailKeys = tail, Scale = k.P.Scale,
            Avx512 = Avx512F.IsSupported && !ForcePortable,
        };

        float* kT = it.KT, v = it.V;
        // K^T by 16 x 16 tiles in registers where whole ones fit, element by element around them.
        int tileKeys = it.Avx512 ? Math.Min(n, it.VectorKeys) / Lanes * Lanes : 0;
        int tileDims = it.Avx512 ? d / Lanes * Lanes : 0;
        for (int t0 = 0; t0 < tileKeys; t0 += Lanes)
            for (int e0 = 0; e0 < tileDims; e0 += Lanes) TransposeTile(it, t0, e0);
        for (int t = 0; t < n; t++)
        {
            float* src = Row(it, it.Tokens[t]);
            float* ks = src + c, vs = src + 2 * c, vt = v + (long)t * dp;
            if (t < it.VectorKeys)
                for (int e = t < tileKeys ? tileDims : 0; e < d; e++) kT[e * np + t] = ks[e];
            int ev = 0;
            for (; ev + Lanes <= d; ev += Lanes) Vector512.Store(Vector512.Load(vs + ev), vt + ev);
            for (; ev < d; ev++) vt[ev] = vs[ev];
            for (; ev < dp; ev++) vt[ev] = 0f; // the last partial vector of V reads zeros, not a stale item's values
        }
        // Keys past n in K^T: zero, so that their scores are finite and the -inf bias removes them.
        if (it.VectorKeys > n)
            for (int e = 0; e < d; e++)
                for (int j = n; j < np; j++) kT[e * np + j] = 0f;

        int i0 = 0;
        for (; i0 + QueryBlock <= n; i0 += QueryBlock) Block<Four>(it, i0);
        switch (n - i0)
        {
            case 3: Block<Three>(it, i0); break;
            case 2: Block<Two>(it, i0); break;
            case 1: Block<One>(it, i0); break;
        }
    }

    /// <summary>
    /// kT[e0 + e, t0 + i] = k[t0 + i, e0 + e] for a 16 x 16 tile: 16 row loads, four rounds of 16 shuffles (pairs of
    /// floats, pairs of pairs, then 128-bit lanes twice), 16 stores, instead of 256 scalar stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeTile(in Item it, int t0, int e0)
    {
        int* tokens = it.Tokens + t0;
        int offset = it.C + e0;
        // Rows 4g..4g+3: unpack pairs, then pairs of pairs; b[4g + m] holds, in 128-bit lane l, rows 4g..4g+3 of column 4l + m.
        Quad(Vector512.Load(Row(it, tokens[0]) + offset), Vector512.Load(Row(it, tokens[1]) + offset),
            Vector512.Load(Row(it, tokens[2]) + offset), Vector512.Load(Row(it, tokens[3]) + offset),
            out var b0, out var b1, out var b2, out var b3);
        Quad(Vector512.Load(Row(it, tokens[4]) + offset), Vector512.Load(Row(it, tokens[5]) + offset),
            Vector512.Load(Row(it, tokens[6]) + offset), Vector512.Load(Row(it, tokens[7]) + offset),
            out var b4, out var b5, out var b6, out var b7);
        Quad(Vector512.Load(Row(it, tokens[8]) + offset), Vector512.Load(Row(it, tokens[9]) + offset),
            Vector512.Load(Row(it, tokens[10]) + offset), Vector512.Load(Row(it, tokens[11]) + offset),
            out var b8, out var b9, out var b10, out var b11);
        Quad(Vector512.Load(Row(it, tokens[12]) + offset), Vector512.Load(Row(it, tokens[13]) + offset),
            Vector512.Load(Row(it, tokens[14]) + offset), Vector512.Load(Row(it, tokens[15]) + offset),
            out var b12, out var b13, out var b14, out var b15);
        float* dst = it.KT + (long)e0 * it.Np + t0;
        long np = it.Np;
        Lanes4(b0, b4, b8, b12, dst, np);
        Lanes4(b1, b5, b9, b13, dst + np, np);
        Lanes4(b2, b6, b10, b14, dst + 2 * np, np);
        Lanes4(b3, b7, b11, b15, dst + 3 * np, np);
    }

    /// <summary>4 x 4 transposes inside each 128-bit lane of rows r0..r3: lane l of b_m = (r0, r1, r2, r3)[4l + m].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        out Vector512<float> b0, out Vector512<float> b1, out Vector512<float> b2, out Vector512<float> b3)
    {
        var a0 = Avx512F.UnpackLow(r0, r1).AsDouble();
        var a1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var a2 = Avx512F.UnpackLow(r2, r3).AsDouble();
        var a3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        b0 = Avx512F.UnpackLow(a0, a2).AsSingle();
        b1 = Avx512F.UnpackHigh(a0, a2).AsSingle();
        b2 = Avx512F.UnpackLow(a1, a3).AsSingle();
        b3 = Avx512F.UnpackHigh(a1, a3).AsSingle();
    }

    /// <summary>
    /// Columns m, 4 + m, 8 + m, 12 + m of the tile from the quads' b_m of rows 0-3, 4-7, 8-11, 12-15: output
    /// column 4l + m is lane l of each, side by side; stored at dst + 4l rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes4(Vector512<float> q0, Vector512<float> q1, Vector512<float> q2, Vector512<float> q3, float* dst, long np)
    {
        var lo01 = Avx512F.Shuffle4x128(q0, q1, 0x44); // lanes 0, 1 of q0, then of q1
        var hi01 = Avx512F.Shuffle4x128(q0, q1, 0xEE); // lanes 2, 3
        var lo23 = Avx512F.Shuffle4x128(q2, q3, 0x44);
        var hi23 = Avx512F.Shuffle4x128(q2, q3, 0xEE);
        Vector512.Store(Avx512F.Shuffle4x128(lo01, lo23, 0x88), dst);          // lane 0 of q0..q3
        Vector512.Store(Avx512F.Shuffle4x128(lo01, lo23, 0xDD), dst + 4 * np); // lane 1
        Vector512.Store(Avx512F.Shuffle4x128(hi01, hi23, 0x88), dst + 8 * np); // lane 2
        Vector512.Store(Avx512F.Shuffle4x128(hi01, hi23, 0xDD), dst + 12 * np); // lane 3
    }

    /// <summary>The qkv row of a token (the padding row for -1), at the item's head.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(in Item it, int token) =>
        (token >= 0 ? it.Image + (long)token * it.C3 : it.Pad) + it.HeadOffset;

    /// <summary>Queries i0 .. i0 + R - 1: scores, softmax, weighted sum of V, into token order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block<R>(in Item it, int i0) where R : struct, ICount
    {
        int* tokens = it.Tokens + i0;
        bool any = false;
        for (int r = 0; r < R.Value; r++) any |= tokens[r] >= 0;
        if (!any) return; // a block of padded queries: nothing to write
        int np = it.Np;
        // Q is read in place, unscaled: the scale goes into the FMA that adds the bias.
        float* q0 = Row(it, tokens[0]);
        float* q1 = R.Value > 1 ? Row(it, tokens[1]) : q0;
        float* q2 = R.Value > 2 ? Row(it, tokens[2]) : q0;
        float* q3 = R.Value > 3 ? Row(it, tokens[3]) : q0;
        float* s = it.S;
        int j = 0;
        for (; j + TileFloats <= it.VectorKeys; j += TileFloats) ScoreTile<R, Four>(q0, q1, q2, q3, it.KT + j, it.D, np, s + j);
        switch ((it.VectorKeys - j) / Lanes)
        {
            case 3: ScoreTile<R, Three>(q0, q1, q2, q3, it.KT + j, it.D, np, s + j); break;
            case 2: ScoreTile<R, Two>(q0, q1, q2, q3, it.KT + j, it.D, np, s + j); break;
            case 1: ScoreTile<R, One>(q0, q1, q2, q3, it.KT + j, it.D, np, s + j); break;
        }
        if (it.TailKeys > 0)
        {
            int first = it.N - it.TailKeys;
            for (int r = 0; r < R.Value; r++)
            {
                float* q = r == 0 ? q0 : r == 1 ? q1 : r == 2 ? q2 : q3;
                float* row = s + r * np;
                Vector512.Store(Vector512<float>.Zero, row + np - Lanes); // columns past n: finite, then -inf bias
                for (int t = first; t < it.N; t++) row[t] = Dot(q, Row(it, it.Tokens[t]) + it.C, it.D);
            }
        }

        var inv = stackalloc float[QueryBlock];
        SoftmaxRows<R>(it, i0, inv);

        int cc = 0, dp = it.Dp;
        for (; cc + TileFloats <= dp; cc += TileFloats) WeightedTile<R, Four>(it, tokens, inv, cc);
        switch ((dp - cc) / Lanes)
        {
            case 3: WeightedTile<R, Three>(it, tokens, inv, cc); break;
            case 2: WeightedTile<R, Two>(it, tokens, inv, cc); break;
            case 1: WeightedTile<R, One>(it, tokens, inv, cc); break;
        }
    }

    /// <summary>q . k over d, a vector at a time, then the remainder.</summary>
    private static float Dot(float* q, float* k, int d)
    {
        var acc = Vector512<float>.Zero;
        int e = 0;
        for (; e + Lanes <= d; e += Lanes) acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + e), Vector512.Load(k + e), acc);
        float sum = Vector512.Sum(acc);
        for (; e < d; e++) sum += q[e] * k[e];
        return sum;
    }

    /// <summary>
    /// s[r, j .. j + 16 C) = q_r . k_j for R queries and C vectors of keys: R x C accumulators (up to 16, enough
    /// independent FMAs to hide their latency), one K^T load per vector and one broadcast per query per head dimension.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreTile<R, C>(float* q0, float* q1, float* q2, float* q3, float* kp, int d, int np, float* s)
        where R : struct, ICount where C : struct, ICount
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int e = 0; e < d; e++, kp += np)
        {
            var k0 = Vector512.Load(kp);
            var k1 = C.Value > 1 ? Vector512.Load(kp + Lanes) : default;
            var k2 = C.Value > 2 ? Vector512.Load(kp + 2 * Lanes) : default;
            var k3 = C.Value > 3 ? Vector512.Load(kp + 3 * Lanes) : default;
            var x = Vector512.Create(q0[e]);
            a00 = Vector512.FusedMultiplyAdd(x, k0, a00);
            if (C.Value > 1) a01 = Vector512.FusedMultiplyAdd(x, k1, a01);
            if (C.Value > 2) a02 = Vector512.FusedMultiplyAdd(x, k2, a02);
            if (C.Value > 3) a03 = Vector512.FusedMultiplyAdd(x, k3, a03);
            if (R.Value > 1)
            {
                x = Vector512.Create(q1[e]);
                a10 = Vector512.FusedMultiplyAdd(x, k0, a10);
                if (C.Value > 1) a11 = Vector512.FusedMultiplyAdd(x, k1, a11);
                if (C.Value > 2) a12 = Vector512.FusedMultiplyAdd(x, k2, a12);
                if (C.Value > 3) a13 = Vector512.FusedMultiplyAdd(x, k3, a13);
            }
            if (R.Value > 2)
            {
                x = Vector512.Create(q2[e]);
                a20 = Vector512.FusedMultiplyAdd(x, k0, a20);
                if (C.Value > 1) a21 = Vector512.FusedMultiplyAdd(x, k1, a21);
                if (C.Value > 2) a22 = Vector512.FusedMultiplyAdd(x, k2, a22);
                if (C.Value > 3) a23 = Vector512.FusedMultiplyAdd(x, k3, a23);
            }
            if (R.Value > 3)
            {
                x = Vector512.Create(q3[e]);
                a30 = Vector512.FusedMultiplyAdd(x, k0, a30);
                if (C.Value > 1) a31 = Vector512.FusedMultiplyAdd(x, k1, a31);
                if (C.Value > 2) a32 = Vector512.FusedMultiplyAdd(x, k2, a32);
                if (C.Value > 3) a33 = Vector512.FusedMultiplyAdd(x, k3, a33);
            }
        }
        StoreRow<C>(s, a00, a01, a02, a03);
        if (R.Value > 1) StoreRow<C>(s + np, a10, a11, a12, a13);
        if (R.Value > 2) StoreRow<C>(s + 2 * np, a20, a21, a22, a23);
        if (R.Value > 3) StoreRow<C>(s + 3 * np, a30, a31, a32, a33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<C>(float* s, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
        where C : struct, ICount
    {
        Vector512.Store(a0, s);
        if (C.Value > 1) Vector512.Store(a1, s + Lanes);
        if (C.Value > 2) Vector512.Store(a2, s + 2 * Lanes);
        if (C.Value > 3) Vector512.Store(a3, s + 3 * Lanes);
    }

    /// <summary>
    /// out_r = inv_r * sum_j p_rj v_j for R query rows and C vectors of channels from cc: R x C accumulators, one V
    /// load per vector and one broadcast per query per key; padded queries are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedTile<R, C>(in Item it, int* tokens, float* inv, int cc) where R : struct, ICount where C : struct, ICount
    {
        int np = it.Np, dp = it.Dp, n = it.N;
        float* p0 = it.S, p1 = p0 + np, p2 = p1 + np, p3 = p2 + np;
        Vector512<float> o00 = default, o01 = default, o02 = default, o03 = default;
        Vector512<float> o10 = default, o11 = default, o12 = default, o13 = default;
        Vector512<float> o20 = default, o21 = default, o22 = default, o23 = default;
        Vector512<float> o30 = default, o31 = default, o32 = default, o33 = default;
        float* vj = it.V + cc;
        for (int j = 0; j < n; j++, vj += dp)
        {
            var v0 = Vector512.Load(vj);
            var v1 = C.Value > 1 ? Vector512.Load(vj + Lanes) : default;
            var v2 = C.Value > 2 ? Vector512.Load(vj + 2 * Lanes) : default;
            var v3 = C.Value > 3 ? Vector512.Load(vj + 3 * Lanes) : default;
            var x = Vector512.Create(p0[j]);
            o00 = Vector512.FusedMultiplyAdd(x, v0, o00);
            if (C.Value > 1) o01 = Vector512.FusedMultiplyAdd(x, v1, o01);
            if (C.Value > 2) o02 = Vector512.FusedMultiplyAdd(x, v2, o02);
            if (C.Value > 3) o03 = Vector512.FusedMultiplyAdd(x, v3, o03);
            if (R.Value > 1)
            {
                x = Vector512.Create(p1[j]);
                o10 = Vector512.FusedMultiplyAdd(x, v0, o10);
                if (C.Value > 1) o11 = Vector512.FusedMultiplyAdd(x, v1, o11);
                if (C.Value > 2) o12 = Vector512.FusedMultiplyAdd(x, v2, o12);
                if (C.Value > 3) o13 = Vector512.FusedMultiplyAdd(x, v3, o13);
            }
            if (R.Value > 2)
            {
                x = Vector512.Create(p2[j]);
                o20 = Vector512.FusedMultiplyAdd(x, v0, o20);
                if (C.Value > 1) o21 = Vector512.FusedMultiplyAdd(x, v1, o21);
                if (C.Value > 2) o22 = Vector512.FusedMultiplyAdd(x, v2, o22);
                if (C.Value > 3) o23 = Vector512.FusedMultiplyAdd(x, v3, o23);
            }
            if (R.Value > 3)
            {
                x = Vector512.Create(p3[j]);
                o30 = Vector512.FusedMultiplyAdd(x, v0, o30);
                if (C.Value > 1) o31 = Vector512.FusedMultiplyAdd(x, v1, o31);
                if (C.Value > 2) o32 = Vector512.FusedMultiplyAdd(x, v2, o32);
                if (C.Value > 3) o33 = Vector512.FusedMultiplyAdd(x, v3, o33);
            }
        }
        int c = it.C, left = it.D - cc;
        StoreOut<C>(it.Out + cc, c, tokens[0], left, inv[0], o00, o01, o02, o03);
        if (R.Value > 1) StoreOut<C>(it.Out + cc, c, tokens[1], left, inv[1], o10, o11, o12, o13);
        if (R.Value > 2) StoreOut<C>(it.Out + cc, c, tokens[2], left, inv[2], o20, o21, o22, o23);
        if (R.Value > 3) StoreOut<C>(it.Out + cc, c, tokens[3], left, inv[3], o30, o31, o32, o33);
    }

    /// <summary>C vectors of one output row (outHead: the head's channel cc of token 0), times 1/sum, clipped to the head's <paramref name="left"/> channels; none for a padded query.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOut<C>(float* outHead, int c, int token, int left, float inv,
        Vector512<float> o0, Vector512<float> o1, Vector512<float> o2, Vector512<float> o3) where C : struct, ICount
    {
        if (token < 0) return;
        float* dst = outHead + (long)token * c;
        var w = Vector512.Create(inv);
        if (left >= C.Value * Lanes)
        {
            Vector512.Store(o0 * w, dst);
            if (C.Value > 1) Vector512.Store(o1 * w, dst + Lanes);
            if (C.Value > 2) Vector512.Store(o2 * w, dst + 2 * Lanes);
            if (C.Value > 3) Vector512.Store(o3 * w, dst + 3 * Lanes);
            return;
        }
        StorePart(dst, left, o0 * w);
        if (C.Value > 1) StorePart(dst + Lanes, left - Lanes, o1 * w);
        if (C.Value > 2) StorePart(dst + 2 * Lanes, left - 2 * Lanes, o2 * w);
        if (C.Value > 3) StorePart(dst + 3 * Lanes, left - 3 * Lanes, o3 * w);
    }

    /// <summary>The first min(left, 16) lanes of o (none when left &lt;= 0): the head's last partial vector must not touch the next head.</summary>
    private static void StorePart(float* dst, int left, Vector512<float> o)
    {
        if (left >= Lanes) Vector512.Store(o, dst);
        else for (int e = 0; e < left; e++) dst[e] = o.GetElement(e);
    }

    /// <summary>A tile size fixed at compile time: each instantiation of a tile method is specialized on it.</summary>
    private interface ICount
    {
        static abstract int Value { get; }
    }

    private struct One : ICount { public static int Value => 1; }
    private struct Two : ICount { public static int Value => 2; }
    private struct Three : ICount { public static int Value => 3; }
    private struct Four : ICount { public static int Value => 4; }

    /// <summary>
    /// The block's R score rows in place: x = s * scale + bias (-100 where the key's region differs from the query's),
    /// then exp(x - max x), and inv[r] = 1 / sum of row r; columns past n hold -inf bias and weigh nothing. The rows go
    /// side by side, so that their max, exp and sum chains overlap instead of waiting on each other.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRows<R>(in Item it, int i0, float* inv) where R : struct, ICount
    {
        int np = it.Np;
        long bs = it.BiasRowStride;
        float* s0 = it.S, s1 = s0 + np, s2 = s1 + np, s3 = s2 + np;
        float* b0 = it.Bias + i0 * bs, b1 = b0 + bs, b2 = b1 + bs, b3 = b2 + bs;
        var scale = Vector512.Create(it.Scale);
        var m0 = Vector512.Create(float.NegativeInfinity);
        Vector512<float> m1 = m0, m2 = m0, m3 = m0;
        float* regions = it.Regions;
        if (regions == null)
        {
            for (int j = 0; j < np; j += Lanes)
            {
                m0 = Logits(s0 + j, b0 + j, scale, m0);
                if (R.Value > 1) m1 = Logits(s1 + j, b1 + j, scale, m1);
                if (R.Value > 2) m2 = Logits(s2 + j, b2 + j, scale, m2);
                if (R.Value > 3) m3 = Logits(s3 + j, b3 + j, scale, m3);
            }
        }
        else
        {
            var own0 = Vector512.Create(regions[i0]);
            var own1 = R.Value > 1 ? Vector512.Create(regions[i0 + 1]) : own0;
            var own2 = R.Value > 2 ? Vector512.Create(regions[i0 + 2]) : own0;
            var own3 = R.Value > 3 ? Vector512.Create(regions[i0 + 3]) : own0;
            for (int j = 0; j < np; j += Lanes)
            {
                var key = Vector512.Load(regions + j);
                m0 = MaskedLogits(s0 + j, b0 + j, scale, key, own0, m0);
                if (R.Value > 1) m1 = MaskedLogits(s1 + j, b1 + j, scale, key, own1, m1);
                if (R.Value > 2) m2 = MaskedLogits(s2 + j, b2 + j, scale, key, own2, m2);
                if (R.Value > 3) m3 = MaskedLogits(s3 + j, b3 + j, scale, key, own3, m3);
            }
        }
        m0 = Vector512.Create(MaxAcross(m0));
        if (R.Value > 1) m1 = Vector512.Create(MaxAcross(m1));
        if (R.Value > 2) m2 = Vector512.Create(MaxAcross(m2));
        if (R.Value > 3) m3 = Vector512.Create(MaxAcross(m3));
        Vector512<float> sum0 = default, sum1 = default, sum2 = default, sum3 = default;
        for (int j = 0; j < np; j += Lanes)
        {
            sum0 += Weights(s0 + j, m0, it.Avx512);
            if (R.Value > 1) sum1 += Weights(s1 + j, m1, it.Avx512);
            if (R.Value > 2) sum2 += Weights(s2 + j, m2, it.Avx512);
            if (R.Value > 3) sum3 += Weights(s3 + j, m3, it.Avx512);
        }
        inv[0] = 1f / Vector512.Sum(sum0);
        if (R.Value > 1) inv[1] = 1f / Vector512.Sum(sum1);
        if (R.Value > 2) inv[2] = 1f / Vector512.Sum(sum2);
        if (R.Value > 3) inv[3] = 1f / Vector512.Sum(sum3);
    }

    /// <summary>s = s * scale + bias in place; returns the running max.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Logits(float* s, float* bias, Vector512<float> scale, Vector512<float> max)
    {
        var x = Vector512.FusedMultiplyAdd(Vector512.Load(s), scale, Vector512.Load(bias));
        Vector512.Store(x, s);
        return Vector512.MaxNative(max, x);
    }

    /// <summary>s = s * scale + bias - (100 where the key's region is not the query's) in place; returns the running max.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MaskedLogits(float* s, float* bias, Vector512<float> scale, Vector512<float> key, Vector512<float> own,
        Vector512<float> max)
    {
        var x = Vector512.FusedMultiplyAdd(Vector512.Load(s), scale, Vector512.Load(bias));
        x = Vector512.ConditionalSelect(Vector512.Equals(key, own), x, x - Vector512.Create(100f));
        Vector512.Store(x, s);
        return Vector512.MaxNative(max, x);
    }

    /// <summary>s = exp(s - max) in place; returns it for the row sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Weights(float* s, Vector512<float> max, bool avx512)
    {
        var e = Exp(Vector512.Load(s) - max, avx512);
        Vector512.Store(e, s);
        return e;
    }

    private static float MaxAcross(Vector512<float> v)
    {
        var a = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var b = Vector128.MaxNative(a.GetLower(), a.GetUpper());
        b = Vector128.MaxNative(b, Vector128.Shuffle(b, Vector128.Create(2, 3, 0, 1)));
        b = Vector128.MaxNative(b, Vector128.Shuffle(b, Vector128.Create(1, 0, 3, 2)));
        return b.ToScalar();
    }

    /// <summary>
    /// e^x for x &lt;= 0, relative error below 5e-7 (about 4 ulp; Vector512.Exp is exact to 1 ulp but goes through
    /// float64 and costs several times more, and a float32 softmax needs no more). x = n ln2 + r with |r| &lt;= ln2/2 in
    /// one FMA (float ln2 is 2e-9 off: n times that stays below an ulp wherever the weight is not negligible), Cephes
    /// expf's polynomial less its r^7 term in Horner form, times 2^n by vscalefps. Below -87.3 it returns ~1e-38
    /// (2^-126, still a normal float), so -inf (keys past n) and -100 (the shift mask) weigh nothing next to the
    /// row maximum's 1, as in the reference.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x, bool avx512)
    {
        x = Vector512.MaxNative(x, Vector512.Create(-87.3f));
        // Adding 1.5 * 2^23 rounds x log2(e) to an integer and leaves it in the low mantissa bits of t.
        var t = Vector512.FusedMultiplyAdd(x, Vector512.Create(1.44269504f), Vector512.Create(12582912f));
        var n = t - Vector512.Create(12582912f);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693147182f), x);
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(1.3981999507e-3f), r, Vector512.Create(8.3334519073e-3f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(4.1665795894e-2f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(1.6666665459e-1f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(5.0000001201e-1f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512<float>.One);
        y = Vector512.FusedMultiplyAdd(y, r, Vector512<float>.One);
        if (Avx512F.IsSupported && avx512) return Avx512F.Scale(y, n);
        // 2^n: (n + 127) << 23; the exponent bits of t shift out.
        return y * Vector512.ShiftLeft(t.AsInt32() + Vector512.Create(127), 23).AsSingle();
    }
}
