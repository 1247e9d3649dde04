namespace GpuAnomaly.Kernels.StudentTeacher;

/// <summary>
/// Uninformed Students scoring (METHODS.md section 1) of one scale: the teacher's dense
/// descriptors [N, D, H, W], M students' dense predictions [N, D, H, W] each, the teacher's
/// per-channel statistics mu, sigma [D] and the anomaly-free statistics of e and v give, per pixel,
/// <code>
/// y = (T - mu) / sigma;  mbar = mean_i m_i;  e = ||mbar - y||^2;  v = mean_i ||m_i||^2 - ||mbar||^2
/// score = (e - EMean) / EStd + (v - VMean) / VStd
/// </code>
/// Outputs are [N, H, W]. Sigma is used as given (the caller guarantees sigma &gt; 0).
/// </summary>
public struct StudentTeacherScoreParams
{
    /// <summary>
    /// The most students one fused launch takes. The GPU kernel gets one view per student (so a
    /// graph can feed M separate student outputs without a concat copy) and ILGPU kernels take a
    /// fixed number of parameters; the paper uses M = 3.
    /// </summary>
    public const int MaxStudents = 4;

    public int N, D, H, W, M;
    public float EMean, EStd, VMean, VStd;

    public static StudentTeacherScoreParams Create(int n, int d, int h, int w, int m,
        float eMean = 0f, float eStd = 1f, float vMean = 0f, float vStd = 1f) => new()
    {
        N = n, D = d, H = h, W = w, M = m, EMean = eMean, EStd = eStd, VMean = vMean, VStd = vStd,
    };

    /// <summary>Elements of the teacher's output and of each student's output: N * D * H * W.</summary>
    public readonly long DescriptorElements => (long)N * D * H * W;
    /// <summary>Elements of the M students stacked in one buffer [M, N, D, H, W].</summary>
    public readonly long StudentsElements => M * DescriptorElements;
    /// <summary>Elements of score, e and v: N * H * W.</summary>
    public readonly long OutputElements => (long)N * H * W;

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (N < 1 || D < 1 || H < 1 || W < 1)
            throw new ArgumentException($"student_teacher_score: sizes must be positive ({this})");
        if (M < 1 || M > MaxStudents)
            throw new ArgumentException($"student_teacher_score: M = {M} students; 1 to {MaxStudents} are supported ({this})");
        if (!(EStd > 0) || !(VStd > 0) || !float.IsFinite(EStd) || !float.IsFinite(VStd))
            throw new ArgumentException($"student_teacher_score: EStd and VStd must be positive and finite ({this})");
        if (!float.IsFinite(EMean) || !float.IsFinite(VMean))
            throw new ArgumentException($"student_teacher_score: EMean and VMean must be finite ({this})");
        if (StudentsElements > int.MaxValue)
            throw new ArgumentException($"student_teacher_score: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>
    /// Checks the buffer lengths every implementation receives: teacher N*D*H*W, mu/sigma D, score N*H*W,
    /// e and v N*H*W or 0 (not written), students 0..M-1 N*D*H*W each and the unused ones empty.
    /// </summary>
    public readonly void CheckLengths(long teacher, long mu, long sigma, long score, long e, long v,
        long s0, long s1, long s2, long s3)
    {
        long desc = DescriptorElements, outs = OutputElements;
        if (teacher != desc || mu != D || sigma != D || score != outs || (e != 0 && e != outs) || (v != 0 && v != outs))
            throw new ArgumentException($"student_teacher_score: teacher {teacher}, mu {mu}, sigma {sigma}, score {score}, " +
                $"e {e}, v {v} elements do not fit {this} (teacher N*D*H*W, mu/sigma D, outputs N*H*W or empty for e, v)");
        long[] students = [s0, s1, s2, s3];
        for (int i = 0; i < MaxStudents; i++)
            if (students[i] != (i < M ? desc : 0))
                throw new ArgumentException($"student_teacher_score: student {i} has {students[i]} elements, expected {(i < M ? desc : 0)} ({this})");
    }

    public override readonly string ToString() =>
        $"N={N} D={D} H={H} W={W} M={M} e=({EMean}, {EStd}) v=({VMean}, {VStd})";
}
