using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Attention;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Cpu;
using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Memory;
using GpuAnomaly.Kernels.Pool;
using GpuAnomaly.Kernels.StudentTeacher;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Kernels.Transformer;
using GpuAnomaly.Kernels.Vim;

namespace GpuAnomaly.Engine;

/// <summary>The `cpu` device: host memory and the managed SIMD kernels. Ops run synchronously.</summary>
public sealed class CpuDevice : Device
{
    public override string Name => "cpu";
    public override string Description =>
        $"{RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} threads, " +
        $"{(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit SIMD")}";
    public override long MemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>The environment variable that sets <see cref="MemoryFraction"/> for new devices (a number in (0, 1]).</summary>
    public const string MemoryFractionVariable = "GPUANOMALY_CPU_MEMORY_FRACTION";
    public const double DefaultMemoryFraction = 0.75;

    /// <summary>
    /// The share of physical memory (the container's limit where there is one) a plan may take: the rest is left to
    /// the process's own arrays, the OS and other programs. Set per device, or by <see cref="MemoryFractionVariable"/>.
    /// </summary>
    public double MemoryFraction
    {
        get => _memoryFraction;
        set => _memoryFraction = value is > 0 and <= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "the cpu memory fraction must be in (0, 1]");
    }
    private double _memoryFraction = MemoryFractionFromEnvironment();

    public override long PlanBudgetBytes => (long)(MemoryBytes * MemoryFraction);

    /// <summary>
    /// The convolutions' scratch (the largest layer's: the per-thread buffers are kept and reused; in a concurrent
    /// stage every lane's thread holds its own) plus the packed copy of every constant conv weight (kept per device),
    /// so that the budget check sees what the run will take.
    /// </summary>
    public override long WorkspaceBytes(ExecutionPlan plan)
    {
        long packed = 0, scratch = 0;
        foreach (var stage in plan.Schedule.Stages)
        {
            long stageScratch = 0;
            foreach (var node in stage.Lanes.SelectMany(l => l))
            {
                if (node.Op is not Conv2dOp conv) continue;
                var p = conv.Params(node.Inputs[0].Shape, node.Inputs[1].Shape, node.Inputs.Count == 3 ? node.Inputs[2].Shape : null);
                bool constant = node.Inputs[1].Kind == ValueKind.Constant;
                if (constant) packed += Conv2dCpu.PackedWeightBytes(p);
                // A lane's ops run on its thread alone.
                stageScratch = Math.Max(stageScratch, Conv2dCpu.WorkspaceBytes(p, weightsPacked: constant, stage.IsConcurrent ? 1 : Environment.ProcessorCount));
            }
            scratch = Math.Max(scratch, stage.IsConcurrent ? Math.Min(stage.Lanes.Count, Environment.ProcessorCount) * stageScratch : stageScratch);
        }
        return packed + scratch;
    }

    private static double MemoryFractionFromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(MemoryFractionVariable);
        if (string.IsNullOrWhiteSpace(text)) return DefaultMemoryFraction;
        return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double f) && f is > 0 and <= 1
            ? f
            : throw new DeviceUnavailableException($"{MemoryFractionVariable}='{text}': expected a number in (0, 1], for example 0.5");
    }
    public override int Multiprocessors => Environment.ProcessorCount;

    /// <summary>The environment variable that sets <see cref="Lanes"/> for new devices (1 turns concurrent branches off).</summary>
    public const string LanesVariable = "GPUANOMALY_CPU_LANES";

    /// <summary>
    /// Independent branches run at once: by default one per thread (<see cref="Environment.ProcessorCount"/>, which
    /// DOTNET_PROCESSOR_COUNT sets); set per device before an executor is made, or by <see cref="LanesVariable"/>. More
    /// lanes than threads is allowed (the threads take lanes as they finish others).
    /// </summary>
    public override int Lanes => _lanes;

    /// <summary>Sets <see cref="Lanes"/> (at least 1) for executors made from now on.</summary>
    public void SetLanes(int lanes) => _lanes = lanes >= 1 ? lanes : throw new ArgumentOutOfRangeException(nameof(lanes), lanes, "lanes must be at least 1");
    private int _lanes = LanesFromEnvironment();

    private static int LanesFromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(LanesVariable);
        if (string.IsNullOrWhiteSpace(text)) return Environment.ProcessorCount;
        return int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1
            ? n
            : throw new DeviceUnavailableException($"{LanesVariable}='{text}': expected a whole number of at least 1, for example 1 to run one node at a time");
    }

    /// <summary>The lanes on <see cref="CpuParallel"/>'s workers; the ops inside a lane then run on its thread alone.</summary>
    public override void RunLanes(int count, ILoopBody body) => CpuParallel.For(0, count, body);
    public override int WarpSize => System.Numerics.Vector<float>.Count;

    public override DeviceMemory AllocateMemory(long bytes, string? what = null)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes));
        if (bytes > MemoryBytes) throw new DeviceOutOfMemoryException(Name, bytes, what);
        try { return new HostMemory(this, bytes); }
        catch (OutOfMemoryException e) { throw new DeviceOutOfMemoryException(Name, bytes, what, e); }
    }

    public override void CopyFromHost(ReadOnlySpan<byte> src, Tensor dst)
    {
        if (src.Length != dst.ByteLength) throw new ArgumentException($"copy of {src.Length} bytes into a tensor of {dst.ByteLength} bytes");
        src.CopyTo(dst.Span<byte>());
    }

    public override void CopyToHost(Tensor src, Span<byte> dst)
    {
        if (dst.Length != src.ByteLength) throw new ArgumentException($"copy of a tensor of {src.ByteLength} bytes into {dst.Length} bytes");
        src.Span<byte>().CopyTo(dst);
    }

    public override void Synchronize() { }

    protected override void RunConv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var b = bias is null ? default : bias.Span<float>();
        if (w.IsConstant) Conv2dCpu.Forward(p, x.Span<float>(), PackedWeights(p, w), b, y.Span<float>());
        else Conv2dCpu.Forward(p, x.Span<float>(), w.Span<float>(), b, y.Span<float>()); // packs on every call
    }

    /// <summary>
    /// Conv weights packed once per constant weight tensor (packing them on every call cost up to
    /// ~25% of a 5x5 layer). Only constants are cached (<see cref="Tensor.IsConstant"/>: a graph's
    /// weights), so a cached pack can never go stale. Keyed weakly by the tensor's memory block, so an
    /// entry lives as long as the block does, plus its byte offset (several tensors may share a block)
    /// and the layer's shape.
    /// </summary>
    private readonly ConstantCache<Conv2dPackedWeights> _packedWeights = new();

    /// <summary>How many times constant conv weights were packed (cache misses): a diagnostic, read by tests.</summary>
    public int ConvWeightPacks => _packedWeights.Misses;

    private Conv2dPackedWeights PackedWeights(in Conv2dParams p, Tensor w)
    {
        var copy = p;
        return _packedWeights.Get(w, packed => packed.Matches(copy), () => Conv2dCpu.PackWeights(copy, w.Span<float>()));
    }

    /// <summary>Ternary convs run the float GEMM on decoded {-1, 0, +1} weights, cached like float conv weights.</summary>
    protected override void RunTernaryConv2d(in TernaryConv2dParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y)
    {
        var b = bias is null ? default : bias.Span<float>();
        if (!w.IsConstant)
        {
            TernaryConv2dCpu.Forward(p, x.Span<float>(), w.Span<uint>(), scale.Span<float>(), b, y.Span<float>());
            return;
        }
        var copy = p;
        var packed = _packedWeights.Get(w, cached => cached.Matches(copy.Conv), () => TernaryConv2dCpu.PackWeights(copy, w.Span<uint>()));
        TernaryConv2dCpu.Forward(p, x.Span<float>(), packed, scale.Span<float>(), b, y.Span<float>());
    }

    protected override void RunTernaryLinear(in TernaryLinearParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y) =>
        TernaryLinearCpu.Forward(p, x.Span<float>(), w.Span<uint>(), scale.Span<float>(), bias is null ? default : bias.Span<float>(), y.Span<float>());

    /// <summary>Linear weights transposed and padded once per constant weight tensor (like conv weights).</summary>
    private readonly ConstantCache<LinearPackedWeights> _linearWeights = new();

    protected override void RunLinear(in LinearParams p, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var b = bias is null ? default : bias.Span<float>();
        if (!w.IsConstant)
        {
            LinearCpu.Forward(p, x.Span<float>(), w.Span<float>(), b, y.Span<float>());
            return;
        }
        var copy = p;
        var packed = _linearWeights.Get(w, cached => cached.Matches(copy), () => LinearCpu.PackWeights(copy, w.Span<float>()));
        LinearCpu.Forward(p, x.Span<float>(), packed, b, y.Span<float>());
    }

    protected override void RunLayerNorm(in LayerNormParams p, Tensor x, Tensor weight, Tensor bias, Tensor y) =>
        LayerNormCpu.Forward(p, x.Span<float>(), weight.Span<float>(), bias.Span<float>(), y.Span<float>());
    protected override void RunGelu(Tensor x, Tensor y) => GeluCpu.Forward(x.Span<float>(), y.Span<float>());
    protected override void RunDwConv(in DwConvParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) =>
        DwConvCpu.Forward(p, x.Span<float>(), w.Span<float>(), bias is null ? default : bias.Span<float>(), y.Span<float>());
    protected override void RunTokenMean(in TokensParams p, Tensor x, Tensor y) => TokensCpu.Mean(p, x.Span<float>(), y.Span<float>());
    protected override void RunTokensFromNchw(in TokensParams p, Tensor x, Tensor y) => TokensCpu.FromNchw(p, x.Span<float>(), y.Span<float>());

    protected override void RunVimScore(in VimParams p, Tensor x, Tensor w, Tensor b, Tensor o, Tensor rt, Tensor y) =>
        VimCpu.Forward(p, x.Span<float>(), w.Span<float>(), b.Span<float>(), o.Span<float>(), rt.Span<float>(), y.Span<float>());

    protected override void RunWindowAttention(in WindowAttentionParams p, Tensor qkv, Tensor? padQkv, Tensor? biasTable, Tensor y) =>
        WindowAttentionCpu.Forward(p, qkv.Span<float>(), padQkv is null ? default : padQkv.Span<float>(),
            biasTable is null ? default : biasTable.Span<float>(), y.Span<float>());

    protected override void RunRowNorms(int n, int d, Tensor rows, Tensor norms) => KnnCpu.RowNorms(n, d, rows.Span<float>(), norms.Span<float>());
    protected override void RunKnn(in KnnParams p, Tensor queries, Tensor bank, Tensor? bankNorms, Tensor distances, Tensor indices) =>
        KnnCpu.Forward(p, queries.Span<float>(), bank.Span<float>(), bankNorms is null ? default : bankNorms.Span<float>(), distances.Span<float>(), indices.Span<int>());
    protected override void RunHybridMemoryScore(in HybridMemoryScoreParams p, Tensor queries, Tensor memory, Tensor y, Tensor best) =>
        HybridMemoryCpu.Score(p, queries.Span<float>(), memory.Span<float>(), y.Span<float>(), best.Span<int>());
    protected override void RunHybridMemoryUpdate(in HybridMemoryUpdateParams p, Tensor memory, Tensor features, Tensor indices) =>
        HybridMemoryCpu.Update(p, memory.Span<float>(), features.Span<float>(), indices.Span<int>());
    protected override void RunCoreset(in CoresetParams p, Tensor features, Tensor? projection, Tensor selected, Tensor minDistances) =>
        CoresetCpu.Forward(p, features.Span<float>(), projection is null ? default : projection.Span<float>(), selected.Span<int>(), minDistances.Span<float>());

    protected override void RunPool2d(in Pool2dParams p, Tensor x, Tensor y) => Pool2dCpu.Forward(p, x.Span<float>(), y.Span<float>());
    protected override void RunLeakyRelu(Tensor x, float slope, Tensor y) => ElementwiseCpu.LeakyRelu(x.Span<float>(), slope, y.Span<float>());
    protected override void RunRelu(Tensor x, Tensor y) => ElementwiseCpu.Relu(x.Span<float>(), y.Span<float>());
    protected override void RunAdd(Tensor a, Tensor b, Tensor y) => ElementwiseCpu.Add(a.Span<float>(), b.Span<float>(), y.Span<float>());

    protected override void RunStudentTeacherScore(in StudentTeacherScoreParams p, Tensor teacher, IReadOnlyList<Tensor> students,
        Tensor mu, Tensor sigma, Tensor score, Tensor? e, Tensor? v)
    {
        ReadOnlySpan<float> Student(int i) => i < students.Count ? students[i].Span<float>() : default;
        StudentTeacherScoreCpu.Forward(p, teacher.Span<float>(), Student(0), Student(1), Student(2), Student(3),
            mu.Span<float>(), sigma.Span<float>(), score.Span<float>(), e is null ? default : e.Span<float>(), v is null ? default : v.Span<float>());
    }

    public override void Dispose()
    {
        _packedWeights.Clear();
        _linearWeights.Clear();
    }

    /// <summary>
    /// Data derived from constant weight tensors (packed GEMM operands), made once per tensor. Only constants are
    /// cached (<see cref="Tensor.IsConstant"/>: a graph's weights), so an entry can never go stale. Keyed weakly by
    /// the tensor's memory block, so an entry lives as long as the block does, plus its byte offset (several tensors
    /// may share a block) and a shape test.
    /// </summary>
    private sealed class ConstantCache<T> where T : class, IDisposable
    {
        private readonly ConditionalWeakTable<DeviceMemory, List<(long ByteOffset, T Value)>> _entries = new();

        public int Misses { get; private set; }

        public T Get(Tensor w, Func<T, bool> matches, Func<T> make)
        {
            var entries = _entries.GetOrCreateValue(w.Memory);
            lock (entries)
            {
                foreach (var (offset, value) in entries)
                    if (offset == w.ByteOffset && matches(value)) return value;
                var made = make();
                entries.Add((w.ByteOffset, made));
                Misses++;
                return made;
            }
        }

        public void Clear()
        {
            foreach (var (_, entries) in _entries)
                lock (entries)
                {
                    foreach (var e in entries) e.Value.Dispose();
                    entries.Clear();
                }
            _entries.Clear();
        }
    }
}
