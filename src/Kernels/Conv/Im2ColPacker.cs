using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// Implicit im2col: packs rows (ci, ky, kx) x columns (oy, ox) of the im2col matrix of one (image, group)
/// straight from the NCHW input into the SGEMM's NR-wide B panels, so no full im2col matrix is ever
/// materialized. Padding becomes zeros; a stride-1 row is a contiguous copy.
/// </summary>
internal unsafe struct Im2ColPacker : IPanelPacker
{
    public float* X;
    public Conv2dParams P;

    /// <summary>
    /// A 1x1, stride-1, unpadded convolution's im2col matrix is the input itself: [CIn/g, H*W] per (image, group).
    /// Read in place unless the plane stride is a multiple of 1 KB, where the kc rows of a panel would fall into
    /// a few L1 sets and evict each other.
    /// </summary>
    public readonly float* Direct(int batch, int group, int k0, out int ldb, out bool wholePanels)
    {
        ldb = P.H * P.W;
        wholePanels = false;
        if (P.KH != 1 || P.KW != 1 || P.StrideH != 1 || P.StrideW != 1
            || P.PadTop != 0 || P.PadLeft != 0 || P.PadBottom != 0 || P.PadRight != 0 || ldb % 256 == 0)
            return null;
        return X + ((long)batch * P.CIn + (long)group * P.CInPerGroup + k0) * ldb;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Pack(int batch, int group, int k0, int kc, int j0, int nc, float* dst, int nr)
    {
        int h = P.H, w = P.W, ow = P.OutW, kh = P.KH, kw = P.KW;
        int sh = P.StrideH, sw = P.StrideW;
        int cig = P.CInPerGroup;
        long plane = (long)h * w;
        float* image = X + ((long)batch * P.CIn + (long)group * cig) * plane;
        int nrShift = nr == 32 ? 5 : nr == 16 ? 4 : throw new ArgumentException($"conv2d: unsupported panel width {nr}");
        long panelStride = (long)kc * nr;
        int ncPad = (nc + nr - 1) / nr * nr;

        for (int kl = 0; kl < kc; kl++)
        {
            int kk = k0 + kl;
            int ci = kk / (kh * kw), r = kk - ci * (kh * kw);
            int ky = r / kw, kx = r - ky * kw;
            float* src = image + ci * plane;
            float* drow = dst + kl * nr;
            int oy = j0 / ow, ox = j0 - oy * ow;
            int jl = 0;
            while (jl < nc)
            {
                int cnt = Math.Min(ow - ox, nc - jl);
                int iy = oy * sh - P.PadTop + ky * P.DilH;
                if ((uint)iy >= (uint)h)
                {
                    Zero(drow, jl, cnt, nrShift, panelStride);
                }
                else
                {
                    float* srow = src + (long)iy * w;
                    int ixb = ox * sw - P.PadLeft + kx * P.DilW;
                    // Output columns t in [tLo, tHi) read inside the row; the rest are padding.
                    int tLo = ixb >= 0 ? 0 : (-ixb + sw - 1) / sw;
                    int tHi = ixb >= w ? 0 : (w - 1 - ixb) / sw + 1;
                    tLo = Math.Min(tLo, cnt);
                    tHi = Math.Clamp(tHi, tLo, cnt);
                    Zero(drow, jl, tLo, nrShift, panelStride);
                    if (sw == 1) CopyRun(srow + ixb + tLo, drow, jl + tLo, tHi - tLo, nrShift, panelStride);
                    else
                        for (int t = tLo; t < tHi; t++)
                        {
                            int j = jl + t;
                            drow[(j >> nrShift) * panelStride + (j & (nr - 1))] = srow[ixb + t * sw];
                        }
                    Zero(drow, jl + tHi, cnt - tHi, nrShift, panelStride);
                }
                jl += cnt;
                ox = 0;
                oy++;
            }
            Zero(drow, nc, ncPad - nc, nrShift, panelStride);
        }
    }

    /// <summary>Copies count contiguous floats to columns j.. of a packed row, split at panel boundaries.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun(float* src, float* drow, int j, int count, int nrShift, long panelStride)
    {
        int nr = 1 << nrShift;
        while (count > 0)
        {
            int lane = j & (nr - 1);
            int n = Math.Min(count, nr - lane);
            Unsafe.CopyBlockUnaligned(drow + (j >> nrShift) * panelStride + lane, src, (uint)n * sizeof(float));
            src += n;
            j += n;
            count -= n;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zero(float* drow, int j, int count, int nrShift, long panelStride)
    {
        int nr = 1 << nrShift;
        for (int t = 0; t < count; t++, j++)
            drow[(j >> nrShift) * panelStride + (j & (nr - 1))] = 0f;
    }
}
