using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The direct path of <see cref="Conv2dCpu"/>: stride-1, ungrouped convolutions on AVX-512 run the 8x32 micro-kernel
/// over B rows read in place from a zero-padded copy of the input, one row per (input channel, tap) at a fixed
/// offset from the tile's first pixel (<see cref="SgemmMicroKernels.Kernel8x32Rows"/>). Nothing is packed per call
/// but the input's padded copy: an im2col panel costs a load and a store per element, which with 16 or 32 output
/// channels (the Uninformed Students networks) is as much work as the multiply-adds that use it.
/// Output tiles of 32 pixels run either along the padded width (a tile may wrap into the next row; the
/// Wp - OutW columns a row carries are computed and dropped) or row by row (each row rounded up to whole tiles),
/// whichever computes fewer columns; a scratch output of whole tiles is then cropped into y.
/// </summary>
public static unsafe partial class Conv2dCpu
{
    /// <summary>Tests and benchmarks turn the direct path off to compare it with the GEMM paths (on their own thread only).</summary>
    [ThreadStatic] internal static bool DisableDirect;

    private const int Tile = SgemmMicroKernels.Nr512, Rows8 = SgemmMicroKernels.Mr512;

    internal static bool UsesDirect(in Conv2dParams p) =>
        !DisableDirect && Sgemm.Use512 && p.Groups == 1 && p.StrideH == 1 && p.StrideW == 1 && p.KH * p.KW > 1;

    /// <summary>How output pixels map onto 32-wide tiles and the scratch output they are written to.</summary>
    private readonly struct DirectMap
    {
        /// <summary>Tiles per image, tiles per output row (all of them when tiles follow the padded width).</summary>
        public readonly int Tiles, TilesPerRow;
        /// <summary>Input floats from one output row's first tile to the next's (0 when tiles follow the padded width).</summary>
        public readonly int InRowStep;
        /// <summary>Scratch floats per output channel, and from one output row to the next in it.</summary>
        public readonly int Ldc, Pitch;

        public DirectMap(in Conv2dParams p, int wp)
        {
            long wide = ((long)p.OutH * wp + Tile - 1) / Tile;
            int perRow = (p.OutW + Tile - 1) / Tile;
            if (wide <= (long)p.OutH * perRow)
            {
                Tiles = TilesPerRow = (int)wide;
                InRowStep = 0;
                Pitch = wp;
                Ldc = Tiles * Tile;
            }
            else
            {
                TilesPerRow = perRow;
                Tiles = p.OutH * perRow;
                InRowStep = wp;
                Pitch = perRow * Tile;
                Ldc = p.OutH * Pitch;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void At(int tile, out int input, out int output)
        {
            int r = tile / TilesPerRow, q = tile - r * TilesPerRow;
            input = r * InRowStep + q * Tile;
            output = r * (InRowStep == 0 ? 0 : Pitch) + q * Tile;
        }
    }

    /// <summary>Whether the direct path's tiles follow the padded width (else they run row by row); for tests.</summary>
    internal static bool DirectTilesFollowPaddedWidth(in Conv2dParams p) =>
        new DirectMap(p, p.W + p.PadLeft + p.PadRight).InRowStep == 0;

    /// <summary>Plane stride of a padded copy: an odd multiple of 16 floats, so the rows of a tile spread over the L1 sets.</summary>
    private static int PaddedPlaneStride(int hp, int wp)
    {
        int ps = (hp * wp + 15) / 16 * 16;
        return ps / 16 % 2 == 0 ? ps + 16 : ps;
    }

    /// <summary>Scratch floats the direct path takes on the calling thread: padded input, tiled output, row table and bias.</summary>
    private static long DirectWorkspaceFloats(in Conv2dParams p)
    {
        int hp = p.H + p.PadTop + p.PadBottom, wp = p.W + p.PadLeft + p.PadRight;
        long imageStride = (long)p.CIn * PaddedPlaneStride(hp, wp);
        var map = new DirectMap(p, wp);
        int mPad = (p.COut + Rows8 - 1) / Rows8 * Rows8;
        long outImage = (long)mPad * map.Ldc;
        long chunk = Math.Clamp(PaddedChunkFloats / Math.Max(imageStride, outImage), 1, p.N);
        return chunk * imageStride + DirectSlack(p) + chunk * outImage + (long)p.CIn * p.KH * p.KW + mPad + 3 * 16;
    }

    /// <summary>Floats after the last padded plane a tile may read: its 32 pixels past the last row, shifted by the widest tap.</summary>
    private static long DirectSlack(in Conv2dParams p) => 2 * Tile + (long)(p.KW - 1) * p.DilW;

    private struct DirectCall
    {
        public Conv2dParams P;
        public DirectMap Map;
        public float* X, Y, XPad, C, A, Bias;
        public int* RowOffsets;
        public int Wp, PlaneStride, MPad, K, N0, Splits;
        public long ImageStride, OutImage;
    }

    private static void DirectGemm(in Conv2dParams p, float* x, float* a, float* bias, float* y)
    {
        int hp = p.H + p.PadTop + p.PadBottom, wp = p.W + p.PadLeft + p.PadRight;
        int ps = PaddedPlaneStride(hp, wp);
        var map = new DirectMap(p, wp);
        int mPad = (p.COut + Rows8 - 1) / Rows8 * Rows8, k = p.CIn * p.KH * p.KW;
        long imageStride = (long)p.CIn * ps, outImage = (long)mPad * map.Ldc, slack = DirectSlack(p);
        int chunk = (int)Math.Clamp(PaddedChunkFloats / Math.Max(imageStride, outImage), 1, p.N);

        // The row table and the bias padded to whole 8-row panels: built once, read by every task.
        float* tables = Workspace.Tables(k + mPad + 16);
        int* rows = (int*)tables;
        float* biasPad = tables + (k + 15) / 16 * 16;
        for (int ci = 0, r = 0; ci < p.CIn; ci++)
        for (int ky = 0; ky < p.KH; ky++)
        for (int kx = 0; kx < p.KW; kx++)
            rows[r++] = ci * ps + ky * p.DilH * wp + kx * p.DilW;
        for (int i = 0; i < mPad; i++) biasPad[i] = bias != null && i < p.COut ? bias[i] : 0f;

        var call = new DirectCall
        {
            P = p, Map = map, X = x, Y = y, A = a, Bias = bias != null ? biasPad : null, RowOffsets = rows,
            XPad = Workspace.Input(chunk * imageStride + slack), C = Workspace.Output(chunk * outImage),
            Wp = wp, PlaneStride = ps, MPad = mPad, K = k, ImageStride = imageStride, OutImage = outImage,
        };
        int threads = p.Flops < 1e6 ? 1 : Environment.ProcessorCount;
        for (int n0 = 0; n0 < p.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, p.N - n0);
            call.N0 = n0;
            // Whole images per task when there are enough of them (each pads, convolves and crops its own image
            // while it is in cache); otherwise tile ranges of one image, with the copies on this thread.
            call.Splits = threads == 1 || nb >= 2 * threads ? 1 : Math.Min(map.Tiles, (4 * threads + nb - 1) / nb);
            new Span<float>(call.XPad + nb * imageStride, (int)slack).Clear();
            if (call.Splits > 1)
                for (int i = 0; i < nb; i++) PadImage(call, i);
            int tasks = nb * call.Splits;
            if (threads == 1 || tasks == 1)
                for (int t = 0; t < tasks; t++) DirectTask(call, t);
            else
            {
                var c = call;
                Parallel.For(0, tasks, t => DirectTask(c, t));
            }
            if (call.Splits > 1)
                for (int i = 0; i < nb; i++) CropImage(call, i);
        }
    }

    private static void DirectTask(in DirectCall d, int task)
    {
        int image = task / d.Splits, split = task - image * d.Splits;
        if (d.Splits == 1) PadImage(d, image);
        int t0 = (int)((long)d.Map.Tiles * split / d.Splits), t1 = (int)((long)d.Map.Tiles * (split + 1) / d.Splits);
        ConvolveTiles(d, image, t0, t1);
        if (d.Splits == 1) CropImage(d, image);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvolveTiles(in DirectCall d, int image, int t0, int t1)
    {
        var map = d.Map;
        float* xImage = d.XPad + image * d.ImageStride, cImage = d.C + image * d.OutImage;
        int ldc = map.Ldc, kcMax = Sgemm.KBlock(d.K);
        var act = d.P.Act;
        float slope = d.P.Slope;
        for (int k0 = 0, kc; k0 < d.K; k0 += kc)
        {
            kc = Sgemm.KcAt(k0, d.K, d.K, kcMax);
            bool first = k0 == 0, last = k0 + kc == d.K;
            float* aBlock = d.A + (long)k0 * d.MPad;
            int* rows = d.RowOffsets + k0;
            for (int m = 0; m < d.MPad; m += Rows8)
            {
                float* aPanel = aBlock + (long)m * kc;
                float* cRows = cImage + (long)m * ldc;
                float* bias = first && d.Bias != null ? d.Bias + m : null;
                for (int t = t0; t < t1; t++)
                {
                    map.At(t, out int input, out int output);
                    SgemmMicroKernels.Kernel8x32Rows(kc, aPanel, xImage + input, rows, cRows + output, ldc, !first, bias,
                        last ? act : Activation.None, slope);
                }
            }
        }
    }

    /// <summary>Copies image i of the chunk into its zero-padded planes.</summary>
    private static void PadImage(in DirectCall d, int i)
    {
        var p = d.P;
        int wp = d.Wp;
        float* src0 = d.X + (long)(d.N0 + i) * p.CIn * p.H * p.W, dst0 = d.XPad + i * d.ImageStride;
        int hp = p.H + p.PadTop + p.PadBottom;
        for (int ci = 0; ci < p.CIn; ci++)
        {
            float* src = src0 + (long)ci * p.H * p.W, dst = dst0 + (long)ci * d.PlaneStride;
            new Span<float>(dst, p.PadTop * wp).Clear();
            float* row = dst + p.PadTop * wp;
            for (int r = 0; r < p.H; r++, row += wp)
            {
                new Span<float>(row, p.PadLeft).Clear();
                new ReadOnlySpan<float>(src + (long)r * p.W, p.W).CopyTo(new Span<float>(row + p.PadLeft, p.W));
                new Span<float>(row + p.PadLeft + p.W, p.PadRight).Clear();
            }
            new Span<float>(row, p.PadBottom * wp + d.PlaneStride - hp * wp).Clear();
        }
    }

    /// <summary>Copies image i's valid output pixels from the tiled scratch into y.</summary>
    private static void CropImage(in DirectCall d, int i)
    {
        var p = d.P;
        int oh = p.OutH, ow = p.OutW, pitch = d.Map.Pitch;
        float* c = d.C + i * d.OutImage, y = d.Y + (long)(d.N0 + i) * p.COut * oh * ow;
        for (int co = 0; co < p.COut; co++)
        {
            float* src = c + (long)co * d.Map.Ldc, dst = y + (long)co * oh * ow;
            for (int r = 0; r < oh; r++)
                new ReadOnlySpan<float>(src + (long)r * pitch, ow).CopyTo(new Span<float>(dst + (long)r * ow, ow));
        }
    }
}
