using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.LayerNorm over the last dimension on an ILGPU accelerator: one warp per row (explicitly grouped, warp
/// shuffles), lanes striding over C so each read of a row is coalesced; mean and centred variance are two
/// all-reduce passes (the row is re-read from cache, C is small in a transformer). y may be x.
/// </summary>
public sealed class LayerNormGpu
{
    private const int WarpsPerGroup = 4;
    private readonly Action<KernelConfig, LayerNormParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _kernel;
    private readonly int _warpSize;

    public LayerNormGpu(Accelerator accelerator)
    {
        _kernel = accelerator.LoadStreamKernel<LayerNormParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel);
        _warpSize = accelerator.WarpSize;
    }

    /// <summary>Queues the normalization on the default stream; does not synchronize.</summary>
    public void Forward(in LayerNormParams p, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y)
    {
        p.CheckLengths(x.Length, weight.Length, bias.Length, y.Length);
        _kernel(new KernelConfig((p.M + WarpsPerGroup - 1) / WarpsPerGroup, WarpsPerGroup * _warpSize), p, x, weight, bias, y);
    }

    private static void Kernel(LayerNormParams p, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y)
    {
        int m = Grid.IdxX * WarpsPerGroup + Warp.WarpIdx;
        if (m >= p.M) return; // warp-uniform
        int lane = Warp.LaneIdx, ws = Warp.WarpSize, c = p.C;
        long row = (long)m * c;
        float sum = 0f;
        for (int i = lane; i < c; i += ws) sum += x[row + i];
        float mean = AllReduce(sum, ws) / c;
        float sq = 0f;
        for (int i = lane; i < c; i += ws)
        {
            float d = x[row + i] - mean;
            sq += d * d;
        }
        float rstd = 1f / XMath.Sqrt(AllReduce(sq, ws) / c + p.Eps); // not rsqrt.approx: keep the cpu rounding
        for (int i = lane; i < c; i += ws) y[row + i] = (x[row + i] - mean) * rstd * weight[i] + bias[i];
    }

    /// <summary>Butterfly sum: every lane ends with the warp's total.</summary>
    private static float AllReduce(float v, int ws)
    {
        for (int mask = ws / 2; mask > 0; mask /= 2) v += Warp.ShuffleXor(v, mask);
        return v;
    }
}
