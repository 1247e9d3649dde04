using GpuAnomaly.Kernels.Cpu;
using System.Numerics.Tensors;

namespace GpuAnomaly.Kernels.Vim;

/// <summary>
/// ViM scoring as the unfused sequence a framework would run (GEMV for the logits, centering,
/// projection onto the residual basis, norm, softmax, reductions), each step a separate SIMD pass
/// over memory with its intermediate stored: the readable comparison for <see cref="VimCpu"/>
/// and the baseline of its benchmark. Same outputs and layout as <see cref="VimParams"/>.
/// </summary>
public sealed class VimUnfused(VimParams p)
{
    private readonly VimParams _p = p;
    private readonly float[] _logits = new float[(long)p.S * p.C];
    private readonly float[] _centered = new float[p.FeatureElements];
    private readonly float[] _z = new float[(long)p.S * p.ResidualDim];
    private readonly float[] _r = new float[p.S];
    private readonly float[] _softmax = new float[(long)p.S * p.C];

    /// <summary>Arrays rather than spans: the passes run on the thread pool.</summary>
    public void Forward(float[] xa, float[] wa, float[] ba, float[] oa, float[] rta, float[] y)
    {
        var p = _p;
        p.CheckLengths(xa.Length, wa.Length, ba.Length, oa.Length, rta.Length, y.Length);
        int n = p.N, c = p.C, k = p.ResidualDim;
        float[] logits = _logits, centered = _centered, z = _z, r = _r, softmax = _softmax;
        // 1. logits = x W^T + b (one GEMV per sample)
        CpuParallel.For(0, p.S, s =>
        {
            var xs = xa.AsSpan(s * n, n);
            for (int j = 0; j < c; j++) logits[s * c + j] = TensorPrimitives.Dot(wa.AsSpan(j * n, n), xs) + ba[j];
        });
        // 2. x' = x - o
        CpuParallel.For(0, p.S, s => TensorPrimitives.Subtract(xa.AsSpan(s * n, n), oa, centered.AsSpan(s * n, n)));
        // 3. z = Rt x'
        CpuParallel.For(0, p.S, s =>
        {
            var xs = centered.AsSpan(s * n, n);
            for (int j = 0; j < k; j++) z[s * k + j] = TensorPrimitives.Dot(rta.AsSpan(j * n, n), xs);
        });
        // 4. r = ||z||
        for (int s = 0; s < p.S; s++) r[s] = TensorPrimitives.Norm(z.AsSpan(s * k, k));
        // 5. softmax over [l, alpha r] and the scores
        CpuParallel.For(0, p.S, s =>
        {
            var l = logits.AsSpan(s * c, c);
            var sm = softmax.AsSpan(s * c, c);
            float maxLogit = TensorPrimitives.Max(l);
            // energy = logsumexp(l) = max + log(sum exp(l - max)), in the softmax buffer before the softmax overwrites it
            TensorPrimitives.Subtract(l, maxLogit, sm);
            TensorPrimitives.Exp(sm, sm);
            float energy = maxLogit + MathF.Log(TensorPrimitives.Sum(sm));
            TensorPrimitives.SoftMax(l, sm);
            float virt = p.Alpha * r[s];
            float top = MathF.Max(maxLogit, virt);
            float all = top + MathF.Log(MathF.Exp(energy - top) + MathF.Exp(virt - top));
            var ys = y.AsSpan(s * VimParams.Outputs, VimParams.Outputs);
            ys[VimParams.VimProbability] = MathF.Exp(virt - all);
            ys[VimParams.VimScore] = virt - energy;
            ys[VimParams.Msp] = TensorPrimitives.Max(sm);
            ys[VimParams.MaxLogit] = maxLogit;
            ys[VimParams.Energy] = energy;
            ys[VimParams.Residual] = r[s];
        });
    }
}
