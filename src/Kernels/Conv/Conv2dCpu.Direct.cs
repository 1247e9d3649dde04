using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The direct path of <see cref="Conv2dCpu"/>: stride-1, ungrouped convolutions on AVX-512 run the 8x32 micro-kernel
/// over B rows read in place from the input, one row per (input channel, tap) at a fixed offset from the tile's
/// first pixel (<see cref="SgemmMicroKernels.Kernel8x32Rows"/>). Nothing is packed per call: an im2col panel costs
/// a load and a store per element, which with 16 or 32 output channels (the Uninformed Students networks) is as
/// much work as the multiply-adds that use it. A tile is 32 consecutive pixels of an output plane in y's own order,
/// so results are stored straight into y and no column is computed twice or thrown away; a tile that wraps from
/// one output row to the next reads the 16-lane half that wraps from two places and selects (<see cref="WrappedHalf"/>). Layers with padding read a zero-padded copy of
/// their input; the others read x itself (every read stays inside the image's planes).
/// </summary>
public static unsafe partial class Conv2dCpu
{
    /// <summary>Tests and benchmarks turn the direct path off to compare it with the GEMM paths (on their own thread only).</summary>
    [ThreadStatic] internal static bool DisableDirect;

    /// <summary>
    /// The direct path's K block (the packed weights are blocked the same way): up to 512 rows, an A panel of 16 KB
    /// in L1, and the tile's accumulators reloaded once per block (measured 512 against 128: 105 vs 91 GFLOP/s on
    /// the US 32->128 4x4 layer, 108 vs 102 on a 256->256 5x5 one; bench `conv-direct`).
    /// </summary>
    internal static int DirectKBlock(int k) => Sgemm.EqualBlocks(k, 512);

    private const int Tile = SgemmMicroKernels.Nr512, Half = Tile / 2, Rows8 = SgemmMicroKernels.Mr512;
    /// <summary>Ints per tile in the tile table: (first, second, split) for each 16-lane half.</summary>
    private const int TileInts = 6;

    /// <summary>
    /// Rows at least a half tile wide: a half then wraps at most once. Narrower outputs are small layers the GEMM
    /// path serves well.
    /// </summary>
    internal static bool UsesDirect(in Conv2dParams p) =>
        !DisableDirect && Sgemm.Use512 && p.Groups == 1 && p.StrideH == 1 && p.StrideW == 1 && p.KH * p.KW > 1
        && p.OutW >= Half && !UsesWinograd(p);

    private static bool IsPadded(in Conv2dParams p) => (p.PadTop | p.PadLeft | p.PadBottom | p.PadRight) != 0;

    /// <summary>Plane stride of a padded copy: an odd multiple of 16 floats, so the rows of a tile spread over the L1 sets.</summary>
    private static int PaddedPlaneStride(int hp, int wp)
    {
        int ps = (hp * wp + 15) / 16 * 16;
        return ps / 16 % 2 == 0 ? ps + 16 : ps;
    }

    private static int Tiles(in Conv2dParams p) => (p.OutH * p.OutW + Tile - 1) / Tile;

    /// <summary>
    /// Scratch floats the direct path takes: on the calling thread the padded input (if any), row and tile tables and
    /// bias; on each of <paramref name="threads"/> workers the scratch tiles of one group.
    /// </summary>
    private static long DirectWorkspaceFloats(in Conv2dParams p, int threads)
    {
        int mPad = (p.COut + Rows8 - 1) / Rows8 * Rows8;
        long floats = (long)p.CIn * p.KH * p.KW + (long)TileInts * Tiles(p) + mPad + 3 * 16
            + threads * ((long)mPad * GroupTiles(mPad) * Tile + 16);
        if (IsPadded(p))
        {
            long imageStride = (long)p.CIn * PaddedPlaneStride(p.H + p.PadTop + p.PadBottom, p.W + p.PadLeft + p.PadRight);
            floats += Math.Clamp(PaddedChunkFloats / imageStride, 1, p.N) * imageStride;
        }
        return floats;
    }

    private struct DirectCall
    {
        public Conv2dParams P;
        public float* X, Y, XPad, A, Bias;
        public int* RowOffsets, TileTable;
        public int PlaneStride, MPad, K, N0, Splits, Tiles;
        public bool Padded;
        public long ImageStride;
    }

    private static void DirectGemm(in Conv2dParams p, float* x, float* a, float* bias, float* y)
    {
        int hp = p.H + p.PadTop + p.PadBottom, wp = p.W + p.PadLeft + p.PadRight;
        bool padded = IsPadded(p);
        int ps = padded ? PaddedPlaneStride(hp, wp) : p.H * p.W;
        int mPad = (p.COut + Rows8 - 1) / Rows8 * Rows8, k = p.CIn * p.KH * p.KW, tiles = Tiles(p);
        long imageStride = (long)p.CIn * ps;
        int chunk = padded ? (int)Math.Clamp(PaddedChunkFloats / imageStride, 1, p.N) : p.N;

        // Tables built once per call and read by every task: B row offsets, the tiles' read offsets, the padded bias.
        long rowInts = (k + 15) / 16 * 16, tileInts = ((long)TileInts * tiles + 15) / 16 * 16;
        float* tables = Workspace.Tables(rowInts + tileInts + mPad);
        int* rows = (int*)tables, tileTable = rows + rowInts;
        float* biasPad = tables + rowInts + tileInts;
        for (int ci = 0, r = 0; ci < p.CIn; ci++)
        for (int ky = 0; ky < p.KH; ky++)
        for (int kx = 0; kx < p.KW; kx++)
            rows[r++] = ci * ps + ky * p.DilH * wp + kx * p.DilW;
        for (int t = 0; t < tiles; t++)
        {
            HalfOffsets(p, wp, t * Tile, out tileTable[t * TileInts], out tileTable[t * TileInts + 1], out tileTable[t * TileInts + 2]);
            HalfOffsets(p, wp, t * Tile + Half, out tileTable[t * TileInts + 3], out tileTable[t * TileInts + 4], out tileTable[t * TileInts + 5]);
        }
        for (int i = 0; i < mPad; i++) biasPad[i] = bias != null && i < p.COut ? bias[i] : 0f;

        var call = new DirectCall
        {
            P = p, X = x, Y = y, A = a, Bias = bias != null ? biasPad : null, RowOffsets = rows, TileTable = tileTable,
            XPad = padded ? Workspace.Input(chunk * imageStride) : x,
            PlaneStride = ps, MPad = mPad, K = k, Tiles = tiles, ImageStride = imageStride, Padded = padded,
        };
        int threads = p.Flops < 1e6 ? 1 : CpuParallel.Threads;
        for (int n0 = 0; n0 < p.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, p.N - n0);
            call.N0 = n0;
            if (!padded) call.XPad = x + n0 * imageStride;
            // Whole images per task when there are enough of them (each pads its own image while it is in cache);
            // otherwise tile ranges of one image, padded on this thread first.
            call.Splits = threads == 1 || nb >= 2 * threads ? 1 : Math.Min(tiles, (4 * threads + nb - 1) / nb);
            if (padded && call.Splits > 1)
                for (int i = 0; i < nb; i++) PadImage(call, i);
            int tasks = nb * call.Splits;
            if (threads == 1 || tasks == 1)
                for (int t = 0; t < tasks; t++) DirectTask(call, t);
            else
            {
                var c = call;
                CpuParallel.For(0, tasks, t => DirectTask(c, t));
            }
        }
    }

    /// <summary>
    /// Where the 16 output pixels from flat index s of an output plane read their first tap: lanes below split at
    /// first + lane, the others (the next output row's first pixels) at second + lane. Pixels past the plane read
    /// earlier, valid input and are never stored.
    /// </summary>
    private static void HalfOffsets(in Conv2dParams p, int wp, int s, out int first, out int second, out int split)
    {
        int total = p.OutH * p.OutW;
        if (s >= total)
        {
            first = second = 0;
            split = Half;
            return;
        }
        int oy = s / p.OutW, ox = s - oy * p.OutW, left = p.OutW - ox;
        first = oy * wp + ox;
        if (left >= Half) (second, split) = (first, Half);
        else if (oy + 1 < p.OutH) (second, split) = ((oy + 1) * wp - left, left);
        else (second, split) = (Math.Max(first - Half, 0), left);
    }

    private static void DirectTask(in DirectCall d, int task)
    {
        int image = task / d.Splits, split = task - image * d.Splits;
        if (d.Splits == 1 && d.Padded) PadImage(d, image);
        int t0 = (int)((long)d.Tiles * split / d.Splits), t1 = (int)((long)d.Tiles * (split + 1) / d.Splits);
        ConvolveTiles(d, image, t0, t1);
    }

    /// <summary>Output floats of a tile group: its outputs stay in L2 while every K block adds to them.</summary>
    private const int GroupOutputFloats = 64 * 1024;

    /// <summary>Tiles per group: as many as keep the group's outputs (all output channels) in L2 across the K blocks.</summary>
    private static int GroupTiles(int mPad) => Math.Max(1, GroupOutputFloats / (mPad * Tile));

    /// <summary>
    /// Groups of tiles, then K blocks, then the group's tiles, then 8-row panels: a tile's B rows of one K block stay
    /// in L1 while every panel's weights stream past them in order, and the group's outputs stay in L2 across the K
    /// blocks (a whole image of a wide layer does not).
    /// Tiles not stored straight into y (the plane's last, partial tile; a panel past COut) accumulate in scratch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvolveTiles(in DirectCall d, int image, int t0, int t1)
    {
        var p = d.P;
        int total = p.OutH * p.OutW, kcMax = DirectKBlock(d.K), groupTiles = GroupTiles(d.MPad);
        float* xImage = d.XPad + image * d.ImageStride;
        float* yImage = d.Y + (long)(d.N0 + image) * p.COut * total;
        float* scratch = Workspace.Scratch((long)d.MPad * groupTiles * Tile);
        var lane = Vector512<int>.Indices;
        for (int g0 = t0; g0 < t1; g0 += groupTiles)
        {
            int g1 = Math.Min(t1, g0 + groupTiles);
            for (int k0 = 0, kc; k0 < d.K; k0 += kc)
            {
                kc = Sgemm.KcAt(k0, d.K, d.K, kcMax);
                bool first = k0 == 0, last = k0 + kc == d.K;
                var act = last ? p.Act : Activation.None;
                int* rows = d.RowOffsets + k0;
                for (int t = g0; t < g1; t++)
                {
                    int* info = d.TileTable + t * TileInts;
                    int s = t * Tile;
                    for (int m = 0; m < d.MPad; m += Rows8)
                    {
                        bool fullRows = m + Rows8 <= p.COut;
                        float* aPanel = d.A + (long)k0 * d.MPad + (long)m * kc;
                        float* bias = first && d.Bias != null ? d.Bias + m : null;
                        bool direct = fullRows && s + Tile <= total;
                        float* c = direct ? yImage + (long)m * total + s : scratch + ((long)m * groupTiles + (t - g0)) * Tile;
                        int ldc = direct ? total : groupTiles * Tile;
                        bool w0 = info[2] != Half, w1 = info[5] != Half;
                        if (!w0 && !w1)
                            SgemmMicroKernels.Kernel8x32Rows(kc, aPanel, xImage, rows, new StraightHalf(info[0]), new StraightHalf(info[3]),
                                c, ldc, !first, bias, act, p.Slope);
                        else if (w0 && !w1)
                            SgemmMicroKernels.Kernel8x32Rows(kc, aPanel, xImage, rows, Wrapped(info, 0, lane), new StraightHalf(info[3]),
                                c, ldc, !first, bias, act, p.Slope);
                        else if (!w0)
                            SgemmMicroKernels.Kernel8x32Rows(kc, aPanel, xImage, rows, new StraightHalf(info[0]), Wrapped(info, 3, lane),
                                c, ldc, !first, bias, act, p.Slope);
                        else
                            SgemmMicroKernels.Kernel8x32Rows(kc, aPanel, xImage, rows, Wrapped(info, 0, lane), Wrapped(info, 3, lane),
                                c, ldc, !first, bias, act, p.Slope);
                    }
                }
            }
            // Copy the scratch tiles' valid part into y.
            for (int m = 0; m < d.MPad; m += Rows8)
            {
                bool fullRows = m + Rows8 <= p.COut;
                int rowsValid = Math.Min(Rows8, p.COut - m);
                for (int t = g0; t < g1; t++)
                {
                    int s = t * Tile;
                    if (fullRows && s + Tile <= total) continue;
                    int valid = Math.Min(Tile, total - s);
                    float* c = scratch + ((long)m * groupTiles + (t - g0)) * Tile;
                    for (int r = 0; r < rowsValid; r++)
                        new ReadOnlySpan<float>(c + (long)r * groupTiles * Tile, valid)
                            .CopyTo(new Span<float>(yImage + (long)(m + r) * total + s, valid));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static WrappedHalf Wrapped(int* info, int at, Vector512<int> lane) =>
        new(info[at], info[at + 1], Vector512.LessThan(lane, Vector512.Create(info[at + 2])).AsSingle());

    /// <summary>Copies image i of the chunk into its zero-padded planes.</summary>
    private static void PadImage(in DirectCall d, int i)
    {
        var p = d.P;
        float* src = d.X + (long)(d.N0 + i) * p.CIn * p.H * p.W, dst = d.XPad + i * d.ImageStride;
        for (int ci = 0; ci < p.CIn; ci++) PadPlane(p, src + (long)ci * p.H * p.W, dst + (long)ci * d.PlaneStride, d.PlaneStride);
    }
}
