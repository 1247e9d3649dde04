using ILGPU;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// A8's activation quantizer on the device, bit-exact with <see cref="TernaryLinearReference.QuantizeToken"/>:
/// one group of <see cref="Threads"/> threads per row (a token of TernaryLinear, an image of
/// TernaryConv2d) finds amax by a shared-memory tree (max is exact in any order), computes
/// s = 127 / max(amax, 1e-5) in float32 and rounds x * s half to even.
/// Two output layouts:
/// - packed (linear): [rows, Words(L) * 4] ints; int 4*wi + j holds, byte b, the int8 value of
///   position 16*wi + 4*b + j, zero past L. Each byte then lines up with byte b of
///   (word &gt;&gt; 2j) &amp; 0x03030303, the 4 codes a dp4a multiplies it with (see
///   <see cref="TernaryKernelMath.DotWord"/>); also writes qsum[row] = sum of the row's int8 values.
/// - plain (conv): the int8 values as floats in x's own layout (NCHW), for the implicit GEMM's gather.
/// Grid: X = rows.
/// </summary>
internal static class TernaryQuantizeKernel
{
    public const int Threads = 256;

    public static void Kernel(int length, int packed, ArrayView<float> x, ArrayView<int> q, ArrayView<float> qf,
        ArrayView<float> s, ArrayView<int> qsum)
    {
        var red = SharedMemory.Allocate<float>(Threads);
        var redSum = SharedMemory.Allocate<int>(Threads);
        int t = Group.IdxX, row = Grid.IdxX;
        int at = row * length;

        float amax = 0f;
        for (int i = t; i < length; i += Threads) amax = IntrinsicMath.Max(amax, IntrinsicMath.Abs(x[at + i]));
        red[t] = amax;
        Group.Barrier();
        for (int h = Threads / 2; h > 0; h >>= 1)
        {
            if (t < h) red[t] = IntrinsicMath.Max(red[t], red[t + h]);
            Group.Barrier();
        }
        float sc = 127f / IntrinsicMath.Max(red[0], TernaryQuantizer.MinGamma);

        if (packed != 0)
        {
            int ints = (length + TernaryPacking.WeightsPerWord - 1) / TernaryPacking.WeightsPerWord * 4;
            int qAt = row * ints, sum = 0;
            for (int i = t; i < ints; i += Threads)
            {
                int k = (i >> 2) * TernaryPacking.WeightsPerWord + (i & 3);
                int v0 = k < length ? TernaryKernelMath.QuantizeValue(x[at + k] * sc) : 0;
                int v1 = k + 4 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 4] * sc) : 0;
                int v2 = k + 8 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 8] * sc) : 0;
                int v3 = k + 12 < length ? TernaryKernelMath.QuantizeValue(x[at + k + 12] * sc) : 0;
                sum += v0 + v1 + v2 + v3;
                q[qAt + i] = (v0 & 0xFF) | ((v1 & 0xFF) << 8) | ((v2 & 0xFF) << 16) | (v3 << 24);
            }
            redSum[t] = sum;
            Group.Barrier();
            for (int h = Threads / 2; h > 0; h >>= 1)
            {
                if (t < h) redSum[t] += redSum[t + h];
                Group.Barrier();
            }
            if (t == 0) qsum[row] = redSum[0];
        }
        else
        {
            for (int i = t; i < length; i += Threads) qf[at + i] = TernaryKernelMath.QuantizeValue(x[at + i] * sc);
        }
        if (t == 0) s[row] = sc;
    }
}
