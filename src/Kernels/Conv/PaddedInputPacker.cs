using System.Diagnostics;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// B of a stride-1 convolution read in place from a zero-padded copy of the input, so no im2col panel is ever
/// copied. Output column j' = oy * Wp + ox runs over the padded width Wp (the Wp - OutW extra columns per row
/// are computed and dropped), and K is ordered (ky, kx, ci): within one tap, B row ci is the padded plane of
/// channel ci shifted by ky * dilH * Wp + kx * dilW, i.e. rows at a constant stride, which the micro-kernel
/// reads directly. The weights are packed in the same (tap, channel) order (<see cref="Conv2dCpu.PackWeights"/>).
/// </summary>
internal unsafe struct PaddedInputPacker : IPanelPacker
{
    public float* XPad;
    public long ImageStride;
    public int PlaneStride, Cig, Wp, KW, DilH, DilW;

    public readonly float* Direct(int batch, int group, int k0, out int ldb, out bool wholePanels)
    {
        int tap = k0 / Cig, ci = k0 - tap * Cig;
        int ky = tap / KW, kx = tap - ky * KW;
        ldb = PlaneStride;
        // The buffer has slack after the last plane: a last, partial panel may read past column N.
        wholePanels = true;
        return XPad + batch * ImageStride + (long)(group * Cig + ci) * PlaneStride + (long)ky * DilH * Wp + kx * DilW;
    }

    public readonly void Pack(int batch, int group, int k0, int kc, int j0, int nc, float* dst, int nr) =>
        throw new UnreachableException("conv2d: the padded input is always read in place");
}
