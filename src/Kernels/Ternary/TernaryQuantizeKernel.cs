using ILGPU;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// A8's activation quantizer on the device, bit-exact with <see cref="TernaryLinearReference.QuantizeToken"/>:
/// one group of <see cref="Warps"/> warps per row (a token of TernaryLinear, an image of
/// TernaryConv2d) finds amax by warp shuffles and one shared-memory stage (max is exact in any order), computes
/// s = 127 / max(amax, 1e-5) in float32 and rounds x * s half to even.
/// Two output layouts:
/// - packed (linear): [rows, Words(L) * 4] ints; int 4*wi + j holds, byte b, the int8 value of
///   position 16*wi + 4*b + j, zero past L. Each byte then lines up with byte b of
///   (word &gt;&gt; 2j) &amp; 0x03030303, the 4 codes a dp4a multiplies it with (see
///   <see cref="TernaryKernelMath.DotWord"/>); also writes qsum[row] = sum of the row's int8 values.
/// - plain (conv): the int8 values as floats in x's own layout (NCHW), for the implicit GEMM's gather.
/// Grid: X = rows. One group per row is enough for tokens; for large conv images (10^5+ values)
/// a multi-group pass (atomic max on the float bits) would use the GPU better.
/// </summary>
internal static class TernaryQuantizeKernel
{
    /// <summary>Warps per group: 256 threads on CUDA, 32 on the CPU emulator (whose barriers are slow).</summary>
    public const int Warps = 8;

    public static void Kernel(int length, int packed, ArrayView<float> x, ArrayView<int> q, ArrayView<float> qf,
        ArrayView<float> s, ArrayView<int> qsum)
    {
        var red = SharedMemory.Allocate<float>(Warps);
        var redSum = SharedMemory.Allocate<int>(Warps);
        int t = Group.IdxX, threads = Group.DimX, row = Grid.IdxX;
        int ws = Warp.WarpSize, lane = Warp.LaneIdx, wid = Warp.WarpIdx;
        int at = row * length;

        // amax: per thread, then a butterfly within each warp, then over the warps' results in shared memory.
        float amax = 0f;
        for (int i = t; i < length; i += threads) amax = IntrinsicMath.Max(amax, IntrinsicMath.Abs(x[at + i]));
        for (int off = ws / 2; off > 0; off >>= 1) amax = IntrinsicMath.Max(amax, Warp.ShuffleXor(amax, off));
        if (lane == 0) red[wid] = amax;
        Group.Barrier();
        amax = 0f;
        for (int i = 0; i < Warps; i++) amax = IntrinsicMath.Max(amax, red[i]);
        // 127f / max(amax, 1e-5f), divided in float64 and rounded once: that equals the IEEE float32
        // quotient exactly (53 >= 2 * 24 + 2 bits), and no backend has an approximate f64 division, so
        // a fast-math f32 division could not change s by an ulp.
        float sc = (float)(127.0 / IntrinsicMath.Max(amax, TernaryQuantizer.MinGamma));

        if (packed != 0)
        {
            int ints = (length + TernaryPacking.WeightsPerWord - 1) / TernaryPacking.WeightsPerWord * 4;
            int qAt = row * ints, sum = 0;
            for (int i = t; i < ints; i += threads)
            {
                int k = (i >> 2) * TernaryPacking.WeightsPerWord + (i & 3);
                int v0 = k < length ? TernaryKernelMath.QuantizeValue(x[at + k] * sc) : 0;
                int v1 = k + 4 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 4] * sc) : 0;
                int v2 = k + 8 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 8] * sc) : 0;
                int v3 = k + 12 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 12] * sc) : 0;
                sum += v0 + v1 + v2 + v3;
                q[qAt + i] = (v0 & 0xFF) | ((v1 & 0xFF) << 8) | ((v2 & 0xFF) << 16) | (v3 << 24);
            }
            for (int off = ws / 2; off > 0; off >>= 1) sum += Warp.ShuffleXor(sum, off);
            if (lane == 0) redSum[wid] = sum;
            Group.Barrier();
            if (t == 0)
            {
                int total = 0;
                for (int i = 0; i < Warps; i++) total += redSum[i];
                qsum[row] = total;
            }
        }
        else
        {
            for (int i = t; i < length; i += threads) qf[at + i] = TernaryKernelMath.QuantizeValue(x[at + i] * sc);
        }
        if (t == 0) s[row] = sc;
    }
}
