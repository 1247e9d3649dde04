using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The Winograd path of <see cref="Conv2dCpu"/>: stride-1, ungrouped, square r x r convolutions (r 3 to 5, any equal
/// dilation) with at least 32 input and 64 output channels run as F(2x2, r x r) (<see cref="WinogradTransform"/>): per
/// tile of 2x2 outputs, alpha^2 = (r+1)^2 products instead of 4 r^2 multiply-adds per channel pair (2.8x fewer for 5x5,
/// 2.6x for 4x4, 2.3x for 3x3; 2x2 would save 1.8x of the products but measured no faster than the direct path:
/// its transforms run padded to 6 x 6 like the others'). The multiply-adds are alpha^2 GEMMs U_xi[COut, CIn] x V_xi[CIn, 32 tiles]
/// on the 8x32 micro-kernel; the filter transform U = G g G^T is done once when the weights are packed.
/// <para>
/// Dilation d splits the output into d x d phases, each an undilated convolution of the input's matching phase. The
/// input is first rearranged so that each (channel, row phase) is a plane of rows holding the d column phases side by
/// side, each segment even-length; then 16 tiles in a row of that plane start 2 floats apart, and each of a tile's
/// alpha x alpha inputs for 16 tiles is one two-register permute of two loads (no gathers). Columns between segments
/// give tiles that are computed and never stored (a few percent).
/// </para>
/// </summary>
public static unsafe partial class Conv2dCpu
{
    /// <summary>Tests and benchmarks turn the Winograd path off (on their own thread only).</summary>
    [ThreadStatic] internal static bool DisableWinograd;

    /// <summary>
    /// Fewer channels than these: the transforms cost as much as the multiplications they save (the input transform
    /// is paid per input channel and tile, the output transform per output channel; measured on the US layers,
    /// bench conv-direct: 32->128 4x4 gains, 16->16 and 16->32 5x5 lose).
    /// </summary>
    internal const int WinogradMinIn = 32, WinogradMinOut = 64;

    private const int WinoLanes = 16, WinoTile = 32;

    /// <summary>Layers the Winograd path serves (checked before <see cref="UsesDirect"/>, which then declines them).</summary>
    internal static bool UsesWinograd(in Conv2dParams p) =>
        !DisableWinograd && Sgemm.Use512 && Avx512F.IsSupported && p.Groups == 1 && p.StrideH == 1 && p.StrideW == 1
        && p.KH == p.KW && p.KH is >= 3 and <= 5 && p.DilH == p.DilW
        && p.CIn >= WinogradMinIn && p.COut >= WinogradMinOut
        // Each phase at least 8 outputs wide and 4 high, so that most of a tile row's lanes hold real tiles.
        && (p.OutW + p.DilW - 1) / p.DilW >= 8 && (p.OutH + p.DilH - 1) / p.DilH >= 4;

    private static readonly WinogradTransform?[] Transforms = new WinogradTransform?[6];

    private static WinogradTransform TransformFor(int r) => Transforms[r] ??= new WinogradTransform(2, r);

    /// <summary>The geometry of one layer's Winograd call (the same for every image).</summary>
    private readonly struct WinoGeometry
    {
        public readonly int D, Alpha, TH, TW, WSeg, UnitsPerRow, RowsPerPhase, RowLength, Units, Blocks;

        public WinoGeometry(in Conv2dParams p)
        {
            D = p.DilH;
            Alpha = p.KH + 1;
            int ohq = (p.OutH + D - 1) / D, owq = (p.OutW + D - 1) / D;
            TH = (ohq + 1) / 2;
            TW = (owq + 1) / 2;
            WSeg = (2 * TW + Alpha - 2 + 1) / 2 * 2;
            int virtualTiles = D * WSeg / 2;
            UnitsPerRow = (virtualTiles + WinoLanes - 1) / WinoLanes;
            RowsPerPhase = 2 * TH + Alpha - 2;
            RowLength = 2 * WinoLanes * UnitsPerRow + Alpha + WinoLanes;
            Units = D * TH * UnitsPerRow;
            Blocks = (Units + 1) / 2;
        }

        public long ChannelFloats => (long)D * RowsPerPhase * RowLength;
    }

    private static long WinogradPackedFloats(in Conv2dParams p)
    {
        int a = p.KH + 1;
        return (long)a * a * Sgemm.PackedASize(p.COut, p.CIn, use512: true);
    }

    /// <summary>Unit table ints: the row offset, then per lane the output offset (-1: no tile) and the row/column flags.</summary>
    private const int UnitInts = 1 + 2 * WinoLanes;

    private static long WinogradWorkspaceFloats(in Conv2dParams p, int threads)
    {
        var g = new WinoGeometry(p);
        long image = p.CIn * g.ChannelFloats;
        int chunk = (int)Math.Clamp(PaddedChunkFloats / image, 1, p.N);
        return chunk * image + (long)UnitInts * g.Units + 64 + threads * WinogradScratchFloats(p) + 64;
    }

    private static long WinogradScratchFloats(in Conv2dParams p)
    {
        int a2 = (p.KH + 1) * (p.KH + 1);
        return (long)a2 * p.CIn * WinoTile + (long)a2 * SgemmMicroKernels.Mr512 * WinoTile + 32;
    }

    /// <summary>U_xi = (G g G^T)_xi for every (output, input) channel pair, each xi's [COut, CIn] packed as the direct path's A.</summary>
    private static void PackWinograd(in Conv2dParams p, float* w, float* dst)
    {
        var t = TransformFor(p.KH);
        int a = t.Alpha, a2 = a * a, taps = p.KH * p.KW;
        long perXi = Sgemm.PackedASize(p.COut, p.CIn, use512: true);
        float* u = Workspace.Weights((long)a2 * p.COut * p.CIn);
        Span<double> tile = stackalloc double[a2];
        for (int co = 0; co < p.COut; co++)
        for (int ci = 0; ci < p.CIn; ci++)
        {
            t.TransformFilter(new ReadOnlySpan<float>(w + ((long)co * p.CIn + ci) * taps, taps), tile);
            for (int xi = 0; xi < a2; xi++) u[((long)xi * p.COut + co) * p.CIn + ci] = (float)tile[xi];
        }
        for (int xi = 0; xi < a2; xi++)
            Sgemm.PackA(u + (long)xi * p.COut * p.CIn, p.CIn, p.COut, p.CIn, dst + xi * perXi, use512: true, kcMax: DirectKBlock(p.CIn));
    }

    private struct WinoCall
    {
        public Conv2dParams P;
        public WinoGeometry G;
        public float* Phases, A, Bias, Y, BT, AT;
        public int* UnitTable;
        public long PerXi;
        public int N0;
    }

    private static void WinogradConv(in Conv2dParams p, float* x, float* a, float* bias, float* y)
    {
        var g = new WinoGeometry(p);
        var t = TransformFor(p.KH);
        int al = g.Alpha;
        long image = p.CIn * g.ChannelFloats;
        int chunk = (int)Math.Clamp(PaddedChunkFloats / image, 1, p.N);
        long tableFloats = ((long)UnitInts * g.Units + 15) / 16 * 16;
        float* tables = Workspace.Tables(tableFloats + 2 * 64);
        int* units = (int*)tables;
        float* bt = tables + tableFloats, at = bt + 64;
        // Zero-padded to 6 x 6 (2 x 6): every alpha runs the same unrolled, register-resident transforms.
        new Span<float>(bt, 2 * 64).Clear();
        for (int i = 0; i < al; i++)
        for (int j = 0; j < al; j++)
            bt[i * 6 + j] = (float)t.BT[i, j];
        for (int i = 0; i < 2; i++)
        for (int j = 0; j < al; j++)
            at[i * 6 + j] = (float)t.AT[i, j];
        BuildUnits(p, g, units);

        var call = new WinoCall
        {
            P = p, G = g, A = a, Bias = bias, Y = y, BT = bt, AT = at, UnitTable = units,
            PerXi = Sgemm.PackedASize(p.COut, p.CIn, use512: true),
            Phases = Workspace.Input(chunk * image),
        };
        int threads = CpuParallel.Threads;
        for (int n0 = 0; n0 < p.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, p.N - n0);
            call.N0 = n0;
            var c = call;
            float* xChunk = x + (long)n0 * p.CIn * p.H * p.W;
            CpuParallel.For(0, nb * p.CIn, plane => RearrangePlane(c, xChunk, plane));
            int tasks = nb * g.Blocks;
            if (threads == 1 || tasks == 1)
                for (int task = 0; task < tasks; task++) WinogradBlock(call, task);
            else CpuParallel.For(0, tasks, task => WinogradBlock(c, task));
        }
    }

    /// <summary>
    /// Input plane (image, channel) -> its d row phases, each RowsPerPhase rows of the d column phases side by side
    /// (WSeg floats each, zero outside the image and its padding), then zeros to the row's end.
    /// </summary>
    private static void RearrangePlane(in WinoCall w, float* xChunk, int plane)
    {
        var p = w.P;
        var g = w.G;
        int d = g.D, image = plane / p.CIn, ci = plane - image * p.CIn;
        float* src = xChunk + (long)plane * p.H * p.W;
        float* dst = w.Phases + (long)image * p.CIn * g.ChannelFloats + ci * g.ChannelFloats;
        for (int qy = 0; qy < d; qy++)
        for (int i = 0; i < g.RowsPerPhase; i++)
        {
            float* row = dst + ((long)qy * g.RowsPerPhase + i) * g.RowLength;
            new Span<float>(row, g.RowLength).Clear();
            int sy = qy + d * i - p.PadTop;
            if (sy < 0 || sy >= p.H) continue;
            float* s = src + (long)sy * p.W;
            for (int qx = 0; qx < d; qx++)
            {
                float* seg = row + qx * g.WSeg;
                // Columns j with 0 <= qx + d j - PadLeft < W.
                int j0 = Math.Max(0, (p.PadLeft - qx + d - 1) / d), j1 = Math.Min(g.WSeg, (p.W + p.PadLeft - qx + d - 1) / d);
                if (d == 1)
                {
                    if (j1 > j0) new ReadOnlySpan<float>(s + j0 - p.PadLeft, j1 - j0).CopyTo(new Span<float>(seg + j0, j1 - j0));
                }
                else
                    for (int j = j0; j < j1; j++) seg[j] = s[qx + d * j - p.PadLeft];
            }
        }
    }

    /// <summary>Per unit (16 tiles of one phase row): where its inputs start, and per lane where its 2x2 outputs go.</summary>
    private static void BuildUnits(in Conv2dParams p, in WinoGeometry g, int* table)
    {
        int d = g.D;
        for (int qy = 0, u = 0; qy < d; qy++)
        for (int ty = 0; ty < g.TH; ty++)
        for (int w = 0; w < g.UnitsPerRow; w++, u++)
        {
            int* e = table + (long)u * UnitInts;
            int u0 = w * WinoLanes;
            e[0] = (qy * g.RowsPerPhase + 2 * ty) * g.RowLength + 2 * u0;
            for (int lane = 0; lane < WinoLanes; lane++)
            {
                int col = 2 * (u0 + lane), qx = col / g.WSeg, tx = col % g.WSeg / 2;
                int oy = qy + 2 * d * ty, ox = qx + 2 * d * tx;
                bool valid = qx < d && tx < g.TW && oy < p.OutH && ox < p.OutW;
                e[1 + lane] = valid ? oy * p.OutW + ox : -1;
                e[1 + WinoLanes + lane] = (oy + d < p.OutH ? 1 : 0) | (ox + d < p.OutW ? 2 : 0);
            }
        }
    }

    /// <summary>One block of two units (32 tiles) of one image: input transform, alpha^2 GEMMs per 8 output channels, output transform.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WinogradBlock(in WinoCall w, int task)
    {
        var p = w.P;
        var g = w.G;
        int image = task / g.Blocks, block = task - image * g.Blocks;
        int al = g.Alpha, a2 = al * al, cin = p.CIn;
        float* scratch = Workspace.Scratch(WinogradScratchFloats(p));
        float* v = scratch, mp = scratch + (long)a2 * cin * WinoTile;
        float* phases = w.Phases + (long)image * cin * g.ChannelFloats;
        float* yImage = w.Y + (long)(w.N0 + image) * p.COut * p.OutH * p.OutW;

        for (int half = 0; half < 2; half++)
        {
            int unit = 2 * block + half;
            if (unit < g.Units) InputTransform(w, phases + w.UnitTable[(long)unit * UnitInts], v + half * WinoLanes, al, cin);
            else
                for (long i = 0; i < (long)a2 * cin; i++) Vector512.Store(Vector512<float>.Zero, v + i * WinoTile + WinoLanes);
        }

        int mPad = (p.COut + SgemmMicroKernels.Mr512 - 1) / SgemmMicroKernels.Mr512 * SgemmMicroKernels.Mr512;
        int kcMax = DirectKBlock(cin);
        for (int m = 0; m < mPad; m += SgemmMicroKernels.Mr512)
        {
            for (int xi = 0; xi < a2; xi++)
            {
                float* axi = w.A + xi * w.PerXi;
                for (int k0 = 0, kc; k0 < cin; k0 += kc)
                {
                    kc = Sgemm.KcAt(k0, cin, cin, kcMax);
                    SgemmMicroKernels.Kernel8x32(kc, axi + (long)k0 * mPad + (long)m * kc, v + ((long)xi * cin + k0) * WinoTile, WinoTile,
                        mp + xi * SgemmMicroKernels.Mr512 * WinoTile, WinoTile, k0 > 0, null, Activation.None, 0f);
                }
            }
            int rows = Math.Min(SgemmMicroKernels.Mr512, p.COut - m);
            for (int half = 0; half < 2; half++)
            {
                int unit = 2 * block + half;
                if (unit >= g.Units) continue;
                int* e = w.UnitTable + (long)unit * UnitInts;
                for (int r = 0; r < rows; r++)
                    OutputTransform(w, mp + r * WinoTile + half * WinoLanes, al, e, yImage + (long)(m + r) * p.OutH * p.OutW,
                        w.Bias != null ? w.Bias[m + r] : 0f);
            }
        }
    }

    /// <summary>Sum_j m[j] x_j over six vectors (m a row of a zero-padded 6 x 6 matrix).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Dot6(float* m, Vector512<float> x0, Vector512<float> x1, Vector512<float> x2,
        Vector512<float> x3, Vector512<float> x4, Vector512<float> x5)
    {
        var a = Vector512.FusedMultiplyAdd(Vector512.Create(m[1]), x1, Vector512.Create(m[0]) * x0);
        var b = Vector512.FusedMultiplyAdd(Vector512.Create(m[3]), x3, Vector512.Create(m[2]) * x2);
        a = Vector512.FusedMultiplyAdd(Vector512.Create(m[4]), x4, a);
        b = Vector512.FusedMultiplyAdd(Vector512.Create(m[5]), x5, b);
        return a + b;
    }

    /// <summary>
    /// B^T v of F(2, 5) (alpha 6, points 0, 1, -1, 2, -2, infinity), written out: its 22 non-zero coefficients with shared
    /// terms in 13 operations instead of 36 multiply-adds. A test checks it against the generated matrix.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Bt6(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, Vector512<float> v4,
        Vector512<float> v5, out Vector512<float> o0, out Vector512<float> o1, out Vector512<float> o2, out Vector512<float> o3,
        out Vector512<float> o4, out Vector512<float> o5)
    {
        var four = Vector512.Create(4f);
        var minusFour = Vector512.Create(-4f);
        var minusFive = Vector512.Create(-5f);
        o0 = Vector512.FusedMultiplyAdd(four, v0, Vector512.FusedMultiplyAdd(minusFive, v2, v4));
        o5 = Vector512.FusedMultiplyAdd(four, v1, Vector512.FusedMultiplyAdd(minusFive, v3, v5));
        var t1 = Vector512.FusedMultiplyAdd(minusFour, v2, v4);
        var t2 = Vector512.FusedMultiplyAdd(minusFour, v1, v3);
        o1 = t1 + t2;
        o2 = t1 - t2;
        var t3 = v4 - v2;
        var t4 = (v3 - v1) * 2f;
        o3 = t3 + t4;
        o4 = t3 - t4;
    }

    /// <summary>The inputs of 16 tiles at (row, column j): lane t reads row[j + 2t]; zero past alpha.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> TileInputs(float* row, int j, int al, Vector512<int> even) =>
        j < al ? Avx512F.PermuteVar16x32x2(Vector512.Load(row + j), even, Vector512.Load(row + j + WinoLanes)) : Vector512<float>.Zero;

    /// <summary>
    /// V_xi[c][16 lanes] = (B^T D B)_xi for each channel, D the tiles' alpha x alpha inputs (lane t at +2t): each row of
    /// D transformed in registers (T = D B), then each column of T (V = B^T T).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTransform(in WinoCall w, float* src, float* v, int al, int cin)
    {
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        float* bt = w.BT;
        int rowLength = w.G.RowLength;
        long channel = w.G.ChannelFloats, xiStride = (long)cin * WinoTile;
        Vector512<float>* tv = stackalloc Vector512<float>[36];
        for (int i = 0; i < 36; i++) tv[i] = Vector512<float>.Zero; // rows past alpha stay zero
        if (al == 6)
        {
            InputTransform6(w, src, v, cin, even, tv);
            return;
        }
        for (int c = 0; c < cin; c++)
        {
            float* s = src + c * channel;
            for (int i = 0; i < al; i++)
            {
                float* row = s + (long)i * rowLength;
                var x0 = TileInputs(row, 0, al, even);
                var x1 = TileInputs(row, 1, al, even);
                var x2 = TileInputs(row, 2, al, even);
                var x3 = TileInputs(row, 3, al, even);
                var x4 = TileInputs(row, 4, al, even);
                var x5 = TileInputs(row, 5, al, even);
                Vector512<float>* t = tv + i * 6;
                for (int b = 0; b < al; b++) t[b] = Dot6(bt + b * 6, x0, x1, x2, x3, x4, x5);
            }
            float* vc = v + (long)c * WinoTile;
            for (int b = 0; b < al; b++)
            {
                Vector512<float> t0 = tv[b], t1 = tv[6 + b], t2 = tv[12 + b], t3 = tv[18 + b], t4 = tv[24 + b], t5 = tv[30 + b];
                for (int a = 0; a < al; a++)
                    Vector512.Store(Dot6(bt + a * 6, t0, t1, t2, t3, t4, t5), vc + (a * al + b) * xiStride);
            }
        }
    }

    /// <summary><see cref="InputTransform"/> for alpha 6 (5x5 filters, most of the flops) with <see cref="Bt6"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTransform6(in WinoCall w, float* src, float* v, int cin, Vector512<int> even, Vector512<float>* tv)
    {
        int rowLength = w.G.RowLength;
        long channel = w.G.ChannelFloats, xiStride = (long)cin * WinoTile;
        for (int c = 0; c < cin; c++)
        {
            float* s = src + c * channel;
            for (int i = 0; i < 6; i++)
            {
                float* row = s + (long)i * rowLength;
                Vector512<float>* t = tv + i * 6;
                Bt6(TileInputs(row, 0, 6, even), TileInputs(row, 1, 6, even), TileInputs(row, 2, 6, even),
                    TileInputs(row, 3, 6, even), TileInputs(row, 4, 6, even), TileInputs(row, 5, 6, even),
                    out t[0], out t[1], out t[2], out t[3], out t[4], out t[5]);
            }
            float* vc = v + (long)c * WinoTile;
            for (int b = 0; b < 6; b++)
            {
                Bt6(tv[b], tv[6 + b], tv[12 + b], tv[18 + b], tv[24 + b], tv[30 + b],
                    out var o0, out var o1, out var o2, out var o3, out var o4, out var o5);
                Vector512.Store(o0, vc + b * xiStride);
                Vector512.Store(o1, vc + (6 + b) * xiStride);
                Vector512.Store(o2, vc + (12 + b) * xiStride);
                Vector512.Store(o3, vc + (18 + b) * xiStride);
                Vector512.Store(o4, vc + (24 + b) * xiStride);
                Vector512.Store(o5, vc + (30 + b) * xiStride);
            }
        }
    }

    /// <summary>Y = A^T M A for 16 tiles of one output channel, + bias, activation, stored at the lanes' 2x2 outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OutputTransform(in WinoCall w, float* m, int al, int* unit, float* y, float bias)
    {
        float* at = w.AT;
        var p = w.P;
        int d = w.G.D, ow = p.OutW;
        const int XiStride = SgemmMicroKernels.Mr512 * WinoTile;
        // T = A^T M (2 x alpha), column by column; columns past alpha are zero.
        Vector512<float> t00 = default, t01 = default, t02 = default, t03 = default, t04 = default, t05 = default;
        Vector512<float> t10 = default, t11 = default, t12 = default, t13 = default, t14 = default, t15 = default;
        for (int j = 0; j < al; j++)
        {
            float* col = m + j * XiStride;
            long rowStride = (long)al * XiStride;
            var m0 = Vector512.Load(col);
            var m1 = Vector512.Load(col + rowStride);
            var m2 = Vector512.Load(col + 2 * rowStride);
            var m3 = al > 3 ? Vector512.Load(col + 3 * rowStride) : Vector512<float>.Zero;
            var m4 = al > 4 ? Vector512.Load(col + 4 * rowStride) : Vector512<float>.Zero;
            var m5 = al > 5 ? Vector512.Load(col + 5 * rowStride) : Vector512<float>.Zero;
            var r0 = Dot6(at, m0, m1, m2, m3, m4, m5);
            var r1 = Dot6(at + 6, m0, m1, m2, m3, m4, m5);
            switch (j)
            {
                case 0: t00 = r0; t10 = r1; break;
                case 1: t01 = r0; t11 = r1; break;
                case 2: t02 = r0; t12 = r1; break;
                case 3: t03 = r0; t13 = r1; break;
                case 4: t04 = r0; t14 = r1; break;
                default: t05 = r0; t15 = r1; break;
            }
        }
        var bv = Vector512.Create(bias);
        var y00 = SgemmMicroKernels.Act(bv + Dot6(at, t00, t01, t02, t03, t04, t05), p.Act, p.Slope);
        var y01 = SgemmMicroKernels.Act(bv + Dot6(at + 6, t00, t01, t02, t03, t04, t05), p.Act, p.Slope);
        var y10 = SgemmMicroKernels.Act(bv + Dot6(at, t10, t11, t12, t13, t14, t15), p.Act, p.Slope);
        var y11 = SgemmMicroKernels.Act(bv + Dot6(at + 6, t10, t11, t12, t13, t14, t15), p.Act, p.Slope);
        float* outs = stackalloc float[4 * WinoLanes];
        Vector512.Store(y00, outs);
        Vector512.Store(y01, outs + WinoLanes);
        Vector512.Store(y10, outs + 2 * WinoLanes);
        Vector512.Store(y11, outs + 3 * WinoLanes);
        for (int lane = 0; lane < WinoLanes; lane++)
        {
            int off = unit[1 + lane];
            if (off < 0) continue;
            int flags = unit[1 + WinoLanes + lane];
            y[off] = outs[lane];
            if ((flags & 2) != 0) y[off + d] = outs[WinoLanes + lane];
            if ((flags & 1) != 0)
            {
                y[off + d * ow] = outs[2 * WinoLanes + lane];
                if ((flags & 2) != 0) y[off + d * ow + d] = outs[3 * WinoLanes + lane];
            }
        }
    }
}
