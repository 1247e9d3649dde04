using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Vim;

/// <summary>
/// Fused ViM scoring on an ILGPU accelerator (see <see cref="VimParams"/>), one group per sample.
/// The group stages x and x - o in shared memory; warp w takes rows w, w + warps, ... of W (each
/// lane a strided slice of the row, coalesced; butterfly sum across the lanes) and keeps an online
/// (max, sum of exp) of its logits, then rows of Rt, keeping the sum of squared coordinates. One
/// barrier, and thread 0 merges the warps' partial states and writes the sample's six outputs:
/// only those reach global memory.
/// </summary>
public sealed class VimGpu
{
    /// <summary>The largest N: x and x - o take 2 * 4096 floats = 32 KB of the 48 KB of shared memory.</summary>
    public const int MaxN = 4096;
    /// <summary>Threads per group (fewer when the accelerator allows fewer).</summary>
    public const int Threads = 256;
    /// <summary>Slots for the warps' partial states: 256 threads / warp size 4 on the CPU emulator.</summary>
    private const int MaxWarps = 64;

    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, VimParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>> _kernel;

    public VimGpu(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _kernel = accelerator.LoadStreamKernel<VimParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>>(Kernel);
    }

    /// <summary>x [S, N], w [C, N], b [C], o [N], rt [K, N] (may be empty when K = 0), y [S, 6]. Queued; does not synchronize.</summary>
    public void Forward(in VimParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> o,
        ArrayView<float> rt, ArrayView<float> y)
    {
        p.CheckLengths(x.Length, w.Length, b.Length, o.Length, rt.Length, y.Length);
        if (p.N > MaxN)
            throw new ArgumentException($"vim_score gpu: N = {p.N} above {MaxN} is not supported ({p})");
        int warp = _accelerator.WarpSize;
        int threads = Math.Min(Threads, _accelerator.MaxNumThreadsPerGroup) / warp * warp;
        if (threads / warp > MaxWarps)
            throw new ArgumentException($"vim_score gpu: {threads / warp} warps per group; at most {MaxWarps} ({_accelerator.Name})");
        _kernel(new KernelConfig(new Index3D(p.S, 1, 1), new Index3D(threads, 1, 1)), p, x, w, b, o, rt, y);
    }

    private static void Kernel(VimParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> o,
        ArrayView<float> rt, ArrayView<float> y)
    {
        var sx = SharedMemory.Allocate<float>(MaxN);
        var sxc = SharedMemory.Allocate<float>(MaxN);
        var sM = SharedMemory.Allocate<float>(MaxWarps);
        var sS = SharedMemory.Allocate<float>(MaxWarps);
        var sQ = SharedMemory.Allocate<float>(MaxWarps);

        int n = p.N, s = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int ws = Warp.WarpSize, lane = Warp.LaneIdx, wid = tid / ws, warps = threads / ws;
        int xBase = s * n;
        for (int j = tid; j < n; j += threads)
        {
            float v = x[xBase + j];
            sx[j] = v;
            sxc[j] = v - o[j];
        }
        Group.Barrier();

        // Logits: online max and sum of exp over this warp's rows (every lane holds the same state).
        float m = float.NegativeInfinity, sum = 0f;
        for (int c = wid; c < p.C; c += warps)
        {
            float l = AllReduce(RowDot(w, c * n, sx, n, lane, ws), ws) + b[c];
            if (l > m) { sum = sum * XMath.Exp(m - l) + 1f; m = l; }
            else sum += XMath.Exp(l - m);
        }
        // Residual: sum of squared coordinates over this warp's rows of Rt.
        float sq = 0f;
        for (int k = wid; k < p.ResidualDim; k += warps)
        {
            float z = AllReduce(RowDot(rt, k * n, sxc, n, lane, ws), ws);
            sq += z * z;
        }
        if (lane == 0) { sM[wid] = m; sS[wid] = sum; sQ[wid] = sq; }
        Group.Barrier();

        if (tid == 0)
        {
            float top = float.NegativeInfinity;
            for (int i = 0; i < warps; i++) top = XMath.Max(top, sM[i]);
            float total = 0f, q = 0f;
            for (int i = 0; i < warps; i++)
            {
                if (sS[i] > 0f) total += sS[i] * XMath.Exp(sM[i] - top); // warps without rows hold (-inf, 0)
                q += sQ[i];
            }
            float r = XMath.Sqrt(q);
            float energy = top + XMath.Log(total);
            float virt = p.Alpha * r;
            float both = XMath.Max(top, virt);
            float all = both + XMath.Log(total * XMath.Exp(top - both) + XMath.Exp(virt - both));
            int at = s * VimParams.Outputs;
            y[at + VimParams.VimProbability] = XMath.Exp(virt - all);
            y[at + VimParams.VimScore] = virt - energy;
            y[at + VimParams.Msp] = 1f / total;
            y[at + VimParams.MaxLogit] = top;
            y[at + VimParams.Energy] = energy;
            y[at + VimParams.Residual] = r;
        }
    }

    /// <summary>This lane's part of row . v: elements lane, lane + ws, ..., four per step (ILGPU does not unroll).</summary>
    private static float RowDot(ArrayView<float> rows, int at, ArrayView<float> v, int n, int lane, int ws)
    {
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
        int j = lane;
        for (; j + 3 * ws < n; j += 4 * ws)
        {
            a0 += rows[at + j] * v[j];
            a1 += rows[at + j + ws] * v[j + ws];
            a2 += rows[at + j + 2 * ws] * v[j + 2 * ws];
            a3 += rows[at + j + 3 * ws] * v[j + 3 * ws];
        }
        for (; j < n; j += ws) a0 += rows[at + j] * v[j];
        return (a0 + a1) + (a2 + a3);
    }

    /// <summary>Butterfly sum: every lane ends with the warp's total.</summary>
    private static float AllReduce(float v, int ws)
    {
        for (int mask = ws / 2; mask > 0; mask /= 2) v += Warp.ShuffleXor(v, mask);
        return v;
    }
}
