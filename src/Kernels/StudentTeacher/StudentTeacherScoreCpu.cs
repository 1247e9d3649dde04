using GpuAnomaly.Kernels.Cpu;
using System.Numerics;

namespace GpuAnomaly.Kernels.StudentTeacher;

/// <summary>
/// Uninformed Students scoring for the `cpu` device, fused: teacher and students are read once,
/// only score (and optionally e, v) are written. NCHW makes the pixels of one channel
/// contiguous, so the kernel walks a block of pixels channel by channel, SIMD along the pixels,
/// with e and v accumulators per pixel in a small stack buffer that stays in L1. Blocks of
/// every image are spread over the cores.
/// </summary>
public static unsafe class StudentTeacherScoreCpu
{
    /// <summary>
    /// Pixels per block: each channel step reads (M + 1) contiguous runs of 8 KB (long enough for
    /// the hardware prefetcher, which a 2 KB run of 512 pixels was not: 2048 ran 2.2x faster on
    /// 1x128x256x256, M = 3), and the two 8 KB accumulator rows stay in L1/L2.
    /// </summary>
    private const int Block = 2048;

    /// <summary>students stacked as [M, N, D, H, W]; e and v may be empty (not written).</summary>
    public static void Forward(in StudentTeacherScoreParams p, ReadOnlySpan<float> teacher, ReadOnlySpan<float> students,
        ReadOnlySpan<float> mu, ReadOnlySpan<float> sigma, Span<float> score, Span<float> e, Span<float> v)
    {
        p.Validate();
        if (students.Length != p.StudentsElements)
            throw new ArgumentException($"student_teacher_score: students have {students.Length} elements, expected {p.StudentsElements} = M*N*D*H*W ({p})");
        int s = (int)p.DescriptorElements;
        Forward(p, teacher, students[..s], p.M > 1 ? students.Slice(s, s) : default, p.M > 2 ? students.Slice(2 * s, s) : default,
            p.M > 3 ? students.Slice(3 * s, s) : default, mu, sigma, score, e, v);
    }

    /// <summary>
    /// Students as separate [N, D, H, W] spans s0..s(M-1); the unused ones are empty. e and v may
    /// be empty (not written).
    /// </summary>
    public static void Forward(in StudentTeacherScoreParams p, ReadOnlySpan<float> teacher,
        ReadOnlySpan<float> s0, ReadOnlySpan<float> s1, ReadOnlySpan<float> s2, ReadOnlySpan<float> s3,
        ReadOnlySpan<float> mu, ReadOnlySpan<float> sigma, Span<float> score, Span<float> e, Span<float> v)
    {
        p.Validate();
        p.CheckLengths(teacher.Length, mu.Length, sigma.Length, score.Length, e.Length, v.Length, s0.Length, s1.Length, s2.Length, s3.Length);

        // 1/sigma once per channel: a multiply per element instead of a divide.
        var invSigma = new float[p.D];
        for (int d = 0; d < p.D; d++) invSigma[d] = 1f / sigma[d];

        int hw = p.H * p.W;
        int blocksPerImage = (hw + Block - 1) / Block;
        int tasks = p.N * blocksPerImage;
        var q = p;
        fixed (float* pt = teacher, p0 = s0, p1 = s1, p2 = s2, p3 = s3, pmu = mu, pinv = invSigma, ps = score, pe = e, pv = v)
        {
            var a = new Args
            {
                T = pt, S0 = p0, S1 = p1, S2 = p2, S3 = p3, Mu = pmu, InvSigma = pinv,
                Score = ps, E = e.Length == 0 ? null : pe, V = v.Length == 0 ? null : pv,
            };
            // Below ~64K pixel-channels one core beats waking the pool.
            if (tasks == 1 || (long)hw * p.N * p.D < 1 << 16) for (int t = 0; t < tasks; t++) Run(q, a, t, blocksPerImage);
            else CpuParallel.For(0, tasks, t => Run(q, a, t, blocksPerImage));
        }
    }

    private struct Args
    {
        public float* T, S0, S1, S2, S3, Mu, InvSigma, Score, E, V;
    }

    private static void Run(in StudentTeacherScoreParams p, in Args a, int task, int blocksPerImage)
    {
        int hw = p.H * p.W;
        int n = task / blocksPerImage;
        int px0 = task % blocksPerImage * Block;
        int count = Math.Min(Block, hw - px0);
        float* accE = stackalloc float[Block];
        float* accV = stackalloc float[Block];
        new Span<float>(accE, count).Clear();
        new Span<float>(accV, count).Clear();

        int m = p.M;
        float invM = 1f / m;
        var vInvM = new Vector<float>(invM);
        int width = Vector<float>.Count;
        long imageBase = (long)n * p.D * hw + px0;
        for (int d = 0; d < p.D; d++)
        {
            long at = imageBase + (long)d * hw;
            float* t = a.T + at, s0 = a.S0 + at;
            float* s1 = m > 1 ? a.S1 + at : null, s2 = m > 2 ? a.S2 + at : null, s3 = m > 3 ? a.S3 + at : null;
            float mu = a.Mu[d], inv = a.InvSigma[d];
            var vMu = new Vector<float>(mu);
            var vInv = new Vector<float>(inv);
            int j = 0;
            for (; j <= count - width; j += width)
            {
                var y = (Vector.Load(t + j) - vMu) * vInv;
                var m0 = Vector.Load(s0 + j);
                var m1 = m > 1 ? Vector.Load(s1 + j) : default;
                var m2 = m > 2 ? Vector.Load(s2 + j) : default;
                var m3 = m > 3 ? Vector.Load(s3 + j) : default;
                var mbar = (m0 + m1 + m2 + m3) * vInvM;
                var diff = mbar - y;
                Vector.Store(Vector.Load(accE + j) + diff * diff, accE + j);
                // v = (1/M) sum_i ||m_i - mbar||^2: the paper's (1/M) sum_i ||m_i||^2 - ||mbar||^2
                // without its cancellation (v is small where students agree, so the difference of two
                // large nearly equal sums would lose most of float32's digits). The 1/M is applied at
                // the end; unused students contribute nothing.
                var d0 = m0 - mbar;
                var sq = d0 * d0;
                if (m > 1) { var d1 = m1 - mbar; sq += d1 * d1; }
                if (m > 2) { var d2 = m2 - mbar; sq += d2 * d2; }
                if (m > 3) { var d3 = m3 - mbar; sq += d3 * d3; }
                Vector.Store(Vector.Load(accV + j) + sq, accV + j);
            }
            for (; j < count; j++)
            {
                float y = (t[j] - mu) * inv;
                float m0 = s0[j], m1 = m > 1 ? s1[j] : 0f, m2 = m > 2 ? s2[j] : 0f, m3 = m > 3 ? s3[j] : 0f;
                float mbar = (m0 + m1 + m2 + m3) * invM;
                float diff = mbar - y;
                accE[j] += diff * diff;
                float sq = (m0 - mbar) * (m0 - mbar);
                if (m > 1) sq += (m1 - mbar) * (m1 - mbar);
                if (m > 2) sq += (m2 - mbar) * (m2 - mbar);
                if (m > 3) sq += (m3 - mbar) * (m3 - mbar);
                accV[j] += sq;
            }
        }

        int o = n * hw + px0;
        float invEStd = 1f / p.EStd, invVStd = 1f / p.VStd;
        for (int j = 0; j < count; j++)
        {
            float ej = accE[j], vj = accV[j] * invM;
            a.Score[o + j] = (ej - p.EMean) * invEStd + (vj - p.VMean) * invVStd;
            if (a.E != null) a.E[o + j] = ej;
            if (a.V != null) a.V[o + j] = vj;
        }
    }
}
