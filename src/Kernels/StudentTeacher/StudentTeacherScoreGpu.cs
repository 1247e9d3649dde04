using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.StudentTeacher;

/// <summary>
/// Uninformed Students scoring on an ILGPU accelerator, fused in one kernel: one thread per
/// pixel of [N, H, W]; consecutive threads read consecutive pixels of a channel (coalesced), each
/// thread walks the D channels (unrolled by 4 by hand: ILGPU 1.5.3 does not unroll) and the M
/// students, keeping e and v in registers; only score (and optionally e, v) is written.
/// </summary>
public sealed class StudentTeacherScoreGpu
{
    private readonly Action<Index1D, StudentTeacherScoreParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _kernel;

    public StudentTeacherScoreGpu(Accelerator accelerator) =>
        _kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, StudentTeacherScoreParams, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel);

    /// <summary>students stacked as [M, N, D, H, W]; e and v may be empty views (not written). Queued; does not synchronize.</summary>
    public void Forward(in StudentTeacherScoreParams p, ArrayView<float> teacher, ArrayView<float> students,
        ArrayView<float> mu, ArrayView<float> sigma, ArrayView<float> score, ArrayView<float> e, ArrayView<float> v)
    {
        p.Validate();
        if (students.Length != p.StudentsElements)
            throw new ArgumentException($"student_teacher_score: students have {students.Length} elements, expected {p.StudentsElements} = M*N*D*H*W ({p})");
        long s = p.DescriptorElements;
        int m = p.M;
        ArrayView<float> Student(int i) => i < m ? students.SubView(i * s, s) : default;
        Forward(p, teacher, Student(0), Student(1), Student(2), Student(3), mu, sigma, score, e, v);
    }

    /// <summary>
    /// Students as separate [N, D, H, W] views s0..s(M-1), the unused ones empty (default). e and v
    /// may be empty (not written). Queued on the default stream; does not synchronize.
    /// </summary>
    public void Forward(in StudentTeacherScoreParams p, ArrayView<float> teacher,
        ArrayView<float> s0, ArrayView<float> s1, ArrayView<float> s2, ArrayView<float> s3,
        ArrayView<float> mu, ArrayView<float> sigma, ArrayView<float> score, ArrayView<float> e, ArrayView<float> v)
    {
        p.Validate();
        p.CheckLengths(teacher.Length, mu.Length, sigma.Length, score.Length, e.Length, v.Length, s0.Length, s1.Length, s2.Length, s3.Length);
        _kernel((int)p.OutputElements, p, teacher, s0, s1, s2, s3, mu, sigma, score, e, v);
    }

    private static void Kernel(Index1D index, StudentTeacherScoreParams p, ArrayView<float> teacher,
        ArrayView<float> s0, ArrayView<float> s1, ArrayView<float> s2, ArrayView<float> s3,
        ArrayView<float> mu, ArrayView<float> sigma, ArrayView<float> score, ArrayView<float> e, ArrayView<float> v)
    {
        int hw = p.H * p.W;
        int n = index / hw;
        int at = n * p.D * hw + (index - n * hw);
        int m = p.M;
        var acc = default(Moments);
        int d = 0;
        // Four channels per step, all their loads issued before any arithmetic: up to 20
        // independent loads in flight per thread, which a one-pixel-per-thread launch needs to
        // keep HBM busy when there are few pixels (one 256x256 image is 64K threads).
        for (; d + 4 <= p.D; d += 4)
        {
            int a1 = at + hw, a2 = at + 2 * hw, a3 = at + 3 * hw;
            float t0 = teacher[at], t1 = teacher[a1], t2 = teacher[a2], t3 = teacher[a3];
            float p0 = s0[at], p1 = s0[a1], p2 = s0[a2], p3 = s0[a3];
            float q0 = 0f, q1 = 0f, q2 = 0f, q3 = 0f, r0 = 0f, r1 = 0f, r2 = 0f, r3 = 0f, u0 = 0f, u1 = 0f, u2 = 0f, u3 = 0f;
            if (m > 1) { q0 = s1[at]; q1 = s1[a1]; q2 = s1[a2]; q3 = s1[a3]; }
            if (m > 2) { r0 = s2[at]; r1 = s2[a1]; r2 = s2[a2]; r3 = s2[a3]; }
            if (m > 3) { u0 = s3[at]; u1 = s3[a1]; u2 = s3[a2]; u3 = s3[a3]; }
            acc = Add(acc, m, (t0 - mu[d]) / sigma[d], p0, q0, r0, u0);
            acc = Add(acc, m, (t1 - mu[d + 1]) / sigma[d + 1], p1, q1, r1, u1);
            acc = Add(acc, m, (t2 - mu[d + 2]) / sigma[d + 2], p2, q2, r2, u2);
            acc = Add(acc, m, (t3 - mu[d + 3]) / sigma[d + 3], p3, q3, r3, u3);
            at += 4 * hw;
        }
        for (; d < p.D; d++, at += hw)
            acc = Add(acc, m, (teacher[at] - mu[d]) / sigma[d], s0[at], m > 1 ? s1[at] : 0f, m > 2 ? s2[at] : 0f, m > 3 ? s3[at] : 0f);

        float ev = acc.E, vv = acc.V / p.M;
        score[index] = (ev - p.EMean) / p.EStd + (vv - p.VMean) / p.VStd;
        if (e.Length > 0) e[index] = ev;
        if (v.Length > 0) v[index] = vv;
    }

    /// <summary>Running sums of one pixel: e = sum_d (mbar - y)^2 and M * v = sum_d sum_i (m_i - mbar)^2.</summary>
    private struct Moments
    {
        public float E, V;
    }

    /// <summary>Adds one channel: y the normalized teacher, m0..m3 the students (0 where i &gt;= M).</summary>
    private static Moments Add(Moments acc, int m, float y, float m0, float m1, float m2, float m3)
    {
        float mbar = (m0 + m1 + m2 + m3) / m;
        float diff = mbar - y;
        acc.E += diff * diff;
        // v = (1/M) sum_i ||m_i - mbar||^2, the paper's (1/M) sum_i ||m_i||^2 - ||mbar||^2 without
        // its cancellation (v is small where students agree); the 1/M is applied by the caller.
        float d0 = m0 - mbar, sq = d0 * d0;
        if (m > 1) { float d1 = m1 - mbar; sq += d1 * d1; }
        if (m > 2) { float d2 = m2 - mbar; sq += d2 * d2; }
        if (m > 3) { float d3 = m3 - mbar; sq += d3 * d3; }
        acc.V += sq;
        return acc;
    }
}
