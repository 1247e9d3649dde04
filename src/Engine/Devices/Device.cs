using GpuAnomaly.Kernels.Attention;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Memory;
using GpuAnomaly.Kernels.Pool;
using GpuAnomaly.Kernels.StudentTeacher;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Kernels.Transformer;
using GpuAnomaly.Kernels.Vim;

namespace GpuAnomaly.Engine;

/// <summary>
/// Where tensors live and ops run: `cpu` (managed SIMD), `cuda` (ILGPU CUDA accelerator) or
/// `ilgpu-cpu` (ILGPU's CPU accelerator, which runs the GPU kernels thread by thread, for tests).
/// Each op validates its tensors' devices and sizes, then calls the kernel family of the device.
/// </summary>
public abstract class Device : IDisposable
{
    /// <summary>"cpu", "cuda" or "ilgpu-cpu".</summary>
    public abstract string Name { get; }
    /// <summary>Hardware description (GPU model, processor).</summary>
    public abstract string Description { get; }
    public abstract long MemoryBytes { get; }
    /// <summary>
    /// The most an executor's plan may take on this device (activations, inputs, outputs, constants): plans over it
    /// are refused before anything is allocated (<see cref="PlanTooLargeException"/>), because on the `cpu` device an
    /// allocation that "fits" the address space only fails once the machine swaps or the OOM killer steps in.
    /// </summary>
    public virtual long PlanBudgetBytes => MemoryBytes;
    /// <summary>
    /// What running <paramref name="plan"/> takes on this device beyond its buffers (<see cref="ExecutionPlan.TotalDeviceBytes"/>):
    /// kernel scratch and weight copies the device keeps. Counted against <see cref="PlanBudgetBytes"/> too.
    /// </summary>
    public virtual long WorkspaceBytes(ExecutionPlan plan) => 0;
    /// <summary>
    /// How many independent branches of a graph an executor may run at the same time on this device
    /// (<see cref="ExecutionSchedule.Concurrent"/>); 1: one node after the other.
    /// </summary>
    public virtual int Lanes => 1;

    /// <summary>Runs <paramref name="body"/> for lanes 0..count-1, at the same time where the device can; returns when all are done.</summary>
    public virtual void RunLanes(int count, GpuAnomaly.Kernels.Cpu.ILoopBody body)
    {
        for (int i = 0; i < count; i++) body.Run(i);
    }

    public abstract int Multiprocessors { get; }
    public abstract int WarpSize { get; }

    public Tensor Allocate(Shape shape, DType dtype = DType.F32, string? what = null)
    {
        long bytes = dtype.StorageBytes(shape);
        return new Tensor(AllocateMemory(bytes, what ?? $"tensor {shape}"), 0, shape, dtype, ownsMemory: true);
    }

    /// <summary>A new F32 tensor holding a copy of <paramref name="data"/>.</summary>
    public Tensor FromHost(ReadOnlySpan<float> data, Shape shape, string? what = null)
    {
        if (data.Length != shape.Elements)
            throw new ArgumentException($"{data.Length} values do not fill shape {shape}");
        var t = Allocate(shape, DType.F32, what);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Allocates a raw block; throws <see cref="DeviceOutOfMemoryException"/> naming the size and this device.</summary>
    public abstract DeviceMemory AllocateMemory(long bytes, string? what = null);
    public abstract void CopyFromHost(ReadOnlySpan<byte> src, Tensor dst);
    public abstract void CopyToHost(Tensor src, Span<byte> dst);
    /// <summary>Waits until every queued kernel has finished.</summary>
    public abstract void Synchronize();

    // ---- ops: every argument is an F32 tensor on this device ----

    public void Conv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        p.Validate();
        Check("conv2d input", x, p.InputElements);
        Check("conv2d weight", w, p.WeightElements);
        if (p.HasBias != 0) Check("conv2d bias", bias ?? throw new ArgumentException("conv2d: HasBias = 1 but no bias tensor"), p.COut);
        Check("conv2d output", y, p.OutputElements);
        RunConv2d(p, x, w, p.HasBias != 0 ? bias : null, y);
    }

    public void Pool2d(in Pool2dParams p, Tensor x, Tensor y)
    {
        p.Validate();
        Check("pool2d input", x, p.InputElements);
        Check("pool2d output", y, p.OutputElements);
        RunPool2d(p, x, y);
    }

    public void LeakyRelu(Tensor x, float slope, Tensor y)
    {
        Check("leaky_relu input", x, x.Elements);
        Check("leaky_relu output", y, x.Elements);
        RunLeakyRelu(x, slope, y);
    }

    public void Relu(Tensor x, Tensor y)
    {
        Check("relu input", x, x.Elements);
        Check("relu output", y, x.Elements);
        RunRelu(x, y);
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        Check("add input a", a, a.Elements);
        Check("add input b", b, a.Elements);
        Check("add output", y, a.Elements);
        RunAdd(a, b, y);
    }

    /// <summary>
    /// TernaryLinear (METHODS.md §3): x [M, K] F32, w a <see cref="DType.Ternary2"/> tensor [N, K] (packed
    /// rows, <see cref="TernaryPacking"/>), scale [1] or [N], optional bias [N], y [M, N].
    /// </summary>
    public void TernaryLinear(in TernaryLinearParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y)
    {
        p.Validate();
        Check("ternary_linear input", x, p.InputElements);
        CheckTernary("ternary_linear weight", w, p.N, p.K);
        Check("ternary_linear scale", scale, p.ScaleElements);
        if (p.HasBias != 0) Check("ternary_linear bias", bias ?? throw new ArgumentException("ternary_linear: HasBias = 1 but no bias tensor"), p.N);
        Check("ternary_linear output", y, p.OutputElements);
        RunTernaryLinear(p, x, w, scale, p.HasBias != 0 ? bias : null, y);
    }

    /// <summary>Conv2d with ternary weights: w a <see cref="DType.Ternary2"/> tensor [COut, CIn/groups, KH, KW], scale [1] or [COut].</summary>
    public void TernaryConv2d(in TernaryConv2dParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y)
    {
        p.Validate();
        var c = p.Conv;
        Check("ternary_conv2d input", x, c.InputElements);
        CheckTernary("ternary_conv2d weight", w, c.COut, p.K);
        Check("ternary_conv2d scale", scale, p.ScaleElements);
        if (c.HasBias != 0) Check("ternary_conv2d bias", bias ?? throw new ArgumentException("ternary_conv2d: HasBias = 1 but no bias tensor"), c.COut);
        Check("ternary_conv2d output", y, c.OutputElements);
        RunTernaryConv2d(p, x, w, scale, c.HasBias != 0 ? bias : null, y);
    }

    // ---- transformer block ops (GpuAnomaly.Kernels.Transformer) ----

    /// <summary>nn.Linear: x [M, K], w [N, K], optional bias [N], y [M, N].</summary>
    public void Linear(in LinearParams p, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        p.Validate();
        Check("linear input", x, p.InputElements);
        Check("linear weight", w, p.WeightElements);
        if (p.HasBias != 0) Check("linear bias", bias ?? throw new ArgumentException("linear: HasBias = 1 but no bias tensor"), p.N);
        Check("linear output", y, p.OutputElements);
        RunLinear(p, x, w, p.HasBias != 0 ? bias : null, y);
    }

    public void LayerNorm(in LayerNormParams p, Tensor x, Tensor weight, Tensor bias, Tensor y)
    {
        p.Validate();
        Check("layer_norm input", x, p.Elements);
        Check("layer_norm weight", weight, p.C);
        Check("layer_norm bias", bias, p.C);
        Check("layer_norm output", y, p.Elements);
        RunLayerNorm(p, x, weight, bias, y);
    }

    public void Gelu(Tensor x, Tensor y)
    {
        Check("gelu input", x, x.Elements);
        Check("gelu output", y, x.Elements);
        RunGelu(x, y);
    }

    /// <summary>Depthwise conv on channels-last tokens [B, H, W, C] (<see cref="DwConvParams"/>).</summary>
    public void DwConv(in DwConvParams p, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        p.Validate();
        Check("dwconv input", x, p.InputElements);
        Check("dwconv weight", w, p.WeightElements);
        if (p.HasBias != 0) Check("dwconv bias", bias ?? throw new ArgumentException("dwconv: HasBias = 1 but no bias tensor"), p.C);
        Check("dwconv output", y, p.OutputElements);
        RunDwConv(p, x, w, p.HasBias != 0 ? bias : null, y);
    }

    /// <summary>[B, T, C] -> [B, C], the mean over tokens.</summary>
    public void TokenMean(in TokensParams p, Tensor x, Tensor y)
    {
        p.Validate("token_mean");
        Check("token_mean input", x, p.Elements);
        Check("token_mean output", y, p.PooledElements);
        RunTokenMean(p, x, y);
    }

    /// <summary>[B, C, H, W] -> [B, H*W, C] (p.T = H*W).</summary>
    public void TokensFromNchw(in TokensParams p, Tensor x, Tensor y)
    {
        p.Validate("to_tokens");
        Check("to_tokens input", x, p.Elements);
        Check("to_tokens output", y, p.Elements);
        RunTokensFromNchw(p, x, y);
    }

    /// <summary>Fused ViM scoring (<see cref="VimParams"/>): x [S, N], w [C, N], b [C], o [N], rt [K, N], y [S, 6].</summary>
    public void VimScore(in VimParams p, Tensor x, Tensor w, Tensor b, Tensor o, Tensor rt, Tensor y)
    {
        p.CheckLengths(x.Elements, w.Elements, b.Elements, o.Elements, rt.Elements, y.Elements);
        Check("vim_score features", x, p.FeatureElements);
        Check("vim_score weight", w, p.WeightElements);
        Check("vim_score bias", b, p.C);
        Check("vim_score origin", o, p.N);
        Check("vim_score residual basis", rt, p.BasisElements);
        Check("vim_score output", y, p.OutputElements);
        RunVimScore(p, x, w, b, o, rt, y);
    }

    /// <summary>
    /// Window / sparse-group attention (<see cref="WindowAttentionParams"/>): qkv [B, H*W, 3C], padQkv [3C] (or null
    /// when the map needs no padding), the relative bias table when the params ask for one, y [B, H*W, C].
    /// </summary>
    public void WindowAttention(in WindowAttentionParams p, Tensor qkv, Tensor? padQkv, Tensor? biasTable, Tensor y)
    {
        p.CheckLengths(qkv.Elements, padQkv?.Elements ?? 0, biasTable?.Elements ?? 0, y.Elements);
        Check("window_attention qkv", qkv, p.QkvElements);
        if (padQkv is not null) Check("window_attention padQkv", padQkv, 3L * p.Channels);
        if (biasTable is not null) Check("window_attention bias table", biasTable, p.BiasElements);
        Check("window_attention output", y, p.OutputElements);
        RunWindowAttention(p, qkv, padQkv, biasTable, y);
    }

    /// <summary>
    /// Uninformed Students scoring of one scale, fused (see <see cref="StudentTeacherScoreParams"/>):
    /// teacher [N, D, H, W], <paramref name="students"/> the M students' outputs stacked [M, N, D, H, W],
    /// mu and sigma [D]; score and the optional e and v (null = not written) [N, H, W].
    /// </summary>
    public void StudentTeacherScore(in StudentTeacherScoreParams p, Tensor teacher, Tensor students, Tensor mu, Tensor sigma,
        Tensor score, Tensor? e = null, Tensor? v = null)
    {
        p.Validate();
        Check("student_teacher_score students (stacked)", students, p.StudentsElements);
        var one = new Shape(p.N, p.D, p.H, p.W);
        long bytes = p.DescriptorElements * sizeof(float);
        var list = new Tensor[p.M];
        for (int i = 0; i < p.M; i++) list[i] = students.Slice(i * bytes, one, DType.F32);
        StudentTeacherScore(p, teacher, list, mu, sigma, score, e, v);
    }

    /// <summary>As above with the M students' outputs as separate [N, D, H, W] tensors (a graph's values, no concat copy).</summary>
    public void StudentTeacherScore(in StudentTeacherScoreParams p, Tensor teacher, IReadOnlyList<Tensor> students, Tensor mu, Tensor sigma,
        Tensor score, Tensor? e = null, Tensor? v = null)
    {
        p.Validate();
        ArgumentNullException.ThrowIfNull(students);
        if (students.Count != p.M)
            throw new ArgumentException($"student_teacher_score: {students.Count} student tensors for M = {p.M} ({p})");
        Check("student_teacher_score teacher", teacher, p.DescriptorElements);
        for (int i = 0; i < students.Count; i++) Check($"student_teacher_score student {i}", students[i], p.DescriptorElements);
        Check("student_teacher_score mu", mu, p.D);
        Check("student_teacher_score sigma", sigma, p.D);
        Check("student_teacher_score score", score, p.OutputElements);
        if (e is not null) Check("student_teacher_score e", e, p.OutputElements);
        if (v is not null) Check("student_teacher_score v", v, p.OutputElements);
        RunStudentTeacherScore(p, teacher, students, mu, sigma, score, e, v);
    }

    // ---- memory bank ops (GpuAnomaly.Kernels.Knn, GpuAnomaly.Kernels.Memory; METHODS.md §5) ----

    /// <summary>Squared L2 norms [N] of the rows of <paramref name="rows"/> [N, D]: the L2 kNN's bank input.</summary>
    public void RowNorms(int n, int d, Tensor rows, Tensor norms)
    {
        if (n < 1 || d < 1 || (long)n * d > int.MaxValue) throw new ArgumentException($"row_norms: bad sizes N={n} D={d}");
        Check("row_norms rows", rows, (long)n * d);
        Check("row_norms norms", norms, n);
        RunRowNorms(n, d, rows, norms);
    }

    /// <summary>
    /// Exact kNN (<see cref="KnnParams"/>): queries [Q, D], bank [N, D], bankNorms [N] (L2; null for the inner
    /// product), distances [Q, K] F32 and indices [Q, K] I32, best first.
    /// </summary>
    public void Knn(in KnnParams p, Tensor queries, Tensor bank, Tensor? bankNorms, Tensor distances, Tensor indices)
    {
        p.Validate();
        Check("knn queries", queries, p.QueryElements);
        Check("knn bank", bank, p.BankElements);
        if (p.Metric == KnnMetric.L2) Check("knn bank norms", bankNorms ?? throw new ArgumentException("knn: the L2 metric needs the bank's row norms"), p.N);
        Check("knn distances", distances, p.OutputElements);
        CheckInt("knn indices", indices, p.OutputElements);
        RunKnn(p, queries, bank, p.Metric == KnnMetric.L2 ? bankNorms : null, distances, indices);
    }

    /// <summary>SpCL scoring (<see cref="HybridMemoryScoreParams"/>): queries [Q, D], memory [P, D], y [Q, 3] F32, best [Q] I32.</summary>
    public void HybridMemoryScore(in HybridMemoryScoreParams p, Tensor queries, Tensor memory, Tensor y, Tensor best)
    {
        p.Validate();
        Check("hybrid_memory_score queries", queries, p.QueryElements);
        Check("hybrid_memory_score memory", memory, p.MemoryElements);
        Check("hybrid_memory_score output", y, p.OutputElements);
        CheckInt("hybrid_memory_score best", best, p.Q);
        RunHybridMemoryScore(p, queries, memory, y, best);
    }

    /// <summary>
    /// SpCL's momentum update of memory [N, D] rows indices [B] (I32) by features [B, D], then re-normalization
    /// (<see cref="HybridMemoryUpdateParams"/>). The indices are read back to the host and checked first: an index
    /// outside the memory is an error, not a write out of bounds.
    /// </summary>
    public void HybridMemoryUpdate(in HybridMemoryUpdateParams p, Tensor memory, Tensor features, Tensor indices)
    {
        p.Validate();
        Check("hybrid_memory_update memory", memory, p.MemoryElements);
        Check("hybrid_memory_update features", features, p.FeatureElements);
        CheckInt("hybrid_memory_update indices", indices, p.B);
        var host = new int[p.B];
        CopyToHost(indices, System.Runtime.InteropServices.MemoryMarshal.AsBytes(host.AsSpan()));
        p.CheckArguments(memory.Elements, features.Elements, host);
        RunHybridMemoryUpdate(p, memory, features, indices);
    }

    /// <summary>
    /// Greedy k-center coreset (<see cref="CoresetParams"/>): features [N, D], projection [D, Projected] (null when
    /// Projected = 0), selected [Count] I32, minDistances [N] F32.
    /// </summary>
    public void Coreset(in CoresetParams p, Tensor features, Tensor? projection, Tensor selected, Tensor minDistances)
    {
        p.Validate();
        Check("coreset features", features, p.FeatureElements);
        if (p.Projected > 0) Check("coreset projection", projection ?? throw new ArgumentException("coreset: Projected > 0 but no projection tensor"), p.ProjectionElements);
        CheckInt("coreset selected", selected, p.Count);
        Check("coreset min distances", minDistances, p.N);
        RunCoreset(p, features, p.Projected > 0 ? projection : null, selected, minDistances);
    }

    protected virtual void RunRowNorms(int n, int d, Tensor rows, Tensor norms) => throw NotOn("row_norms");
    protected virtual void RunKnn(in KnnParams p, Tensor queries, Tensor bank, Tensor? bankNorms, Tensor distances, Tensor indices) => throw NotOn("knn");
    protected virtual void RunHybridMemoryScore(in HybridMemoryScoreParams p, Tensor queries, Tensor memory, Tensor y, Tensor best) => throw NotOn("hybrid_memory_score");
    protected virtual void RunHybridMemoryUpdate(in HybridMemoryUpdateParams p, Tensor memory, Tensor features, Tensor indices) => throw NotOn("hybrid_memory_update");
    protected virtual void RunCoreset(in CoresetParams p, Tensor features, Tensor? projection, Tensor selected, Tensor minDistances) => throw NotOn("coreset");

    protected abstract void RunConv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y);
    protected abstract void RunPool2d(in Pool2dParams p, Tensor x, Tensor y);
    protected abstract void RunLeakyRelu(Tensor x, float slope, Tensor y);
    protected abstract void RunRelu(Tensor x, Tensor y);
    protected abstract void RunAdd(Tensor a, Tensor b, Tensor y);
    /// <summary>
    /// Arguments validated: M student tensors, e and v null when not wanted. Virtual rather than
    /// abstract so that devices written outside the engine (tests' counting devices) keep compiling;
    /// cpu and the ILGPU devices override it.
    /// </summary>
    protected virtual void RunStudentTeacherScore(in StudentTeacherScoreParams p, Tensor teacher, IReadOnlyList<Tensor> students,
        Tensor mu, Tensor sigma, Tensor score, Tensor? e, Tensor? v) =>
        throw new NotSupportedException($"student_teacher_score is not implemented on device {Name}");

    /// <summary>Arguments validated; bias null when absent. Virtual so that devices written outside the engine keep compiling.</summary>
    protected virtual void RunTernaryLinear(in TernaryLinearParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y) =>
        throw new NotSupportedException($"ternary_linear is not implemented on device {Name}");

    /// <summary>Arguments validated; bias null when absent.</summary>
    protected virtual void RunTernaryConv2d(in TernaryConv2dParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y) =>
        throw new NotSupportedException($"ternary_conv2d is not implemented on device {Name}");

    protected virtual void RunLinear(in LinearParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) => throw NotOn("linear");
    protected virtual void RunLayerNorm(in LayerNormParams p, Tensor x, Tensor weight, Tensor bias, Tensor y) => throw NotOn("layer_norm");
    protected virtual void RunGelu(Tensor x, Tensor y) => throw NotOn("gelu");
    protected virtual void RunDwConv(in DwConvParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) => throw NotOn("dwconv");
    protected virtual void RunTokenMean(in TokensParams p, Tensor x, Tensor y) => throw NotOn("token_mean");
    protected virtual void RunTokensFromNchw(in TokensParams p, Tensor x, Tensor y) => throw NotOn("to_tokens");
    protected virtual void RunVimScore(in VimParams p, Tensor x, Tensor w, Tensor b, Tensor o, Tensor rt, Tensor y) => throw NotOn("vim_score");
    private NotSupportedException NotOn(string op) => new($"{op} is not implemented on device {Name}");

    /// <summary>Arguments validated; padQkv and biasTable null when absent.</summary>
    protected virtual void RunWindowAttention(in WindowAttentionParams p, Tensor qkv, Tensor? padQkv, Tensor? biasTable, Tensor y) =>
        throw new NotSupportedException($"window_attention is not implemented on device {Name}");

    private void CheckTernary(string what, Tensor t, int rows, int k)
    {
        if (!ReferenceEquals(t.Device, this))
            throw new ArgumentException($"{what} lives on {t.Device.Name}, the op runs on {Name}");
        if (t.DType != DType.Ternary2)
            throw new ArgumentException($"{what} is {t.DType}; this op takes a packed ternary (Ternary2) weight");
        if (t.Shape[0] != rows || t.Elements != (long)rows * k || t.ByteLength != TernaryPacking.Bytes(rows, k))
            throw new ArgumentException($"{what} {t.Shape} ({t.ByteLength} bytes) is not a packed [{rows}, {k}] matrix");
    }

    private void CheckInt(string what, Tensor t, long elements)
    {
        if (!ReferenceEquals(t.Device, this))
            throw new ArgumentException($"{what} lives on {t.Device.Name}, the op runs on {Name}");
        if (t.DType != DType.I32)
            throw new ArgumentException($"{what} is {t.DType}; this op takes I32");
        if (t.Elements != elements)
            throw new ArgumentException($"{what} has {t.Elements} elements ({t.Shape}), expected {elements}");
    }

    private void Check(string what, Tensor t, long elements)
    {
        if (!ReferenceEquals(t.Device, this))
            throw new ArgumentException($"{what} lives on {t.Device.Name}, the op runs on {Name}");
        if (t.DType != DType.F32)
            throw new ArgumentException($"{what} is {t.DType}; this op takes F32");
        if (t.Elements != elements)
            throw new ArgumentException($"{what} has {t.Elements} elements ({t.Shape}), expected {elements}");
    }

    public abstract void Dispose();

    public override string ToString() => $"{Name} ({Description})";

    /// <summary>The device names the CLI and the library accept.</summary>
    public static readonly string[] Names = ["auto", "cpu", "cuda", "ilgpu-cpu"];

    /// <summary>Opens a device by name: auto = cuda when a CUDA GPU is present, else cpu.</summary>
    public static Device Open(string name = "auto") => name switch
    {
        "auto" => IlgpuDevice.CudaAvailable() ? IlgpuDevice.OpenCuda() : new CpuDevice(),
        "cpu" => new CpuDevice(),
        "cuda" => IlgpuDevice.OpenCuda(),
        "ilgpu-cpu" => IlgpuDevice.OpenCpuEmulator(),
        _ => throw new DeviceUnavailableException($"unknown device '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
