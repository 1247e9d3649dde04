using GpuAnomaly.Kernels.Attention;
using GpuAnomaly.Kernels.Axis;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Layout;
using GpuAnomaly.Kernels.Reduce;
using GpuAnomaly.Kernels.Gemm;
using GpuAnomaly.Kernels.Memory;
using GpuAnomaly.Kernels.Pool;
using GpuAnomaly.Kernels.StudentTeacher;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Kernels.Transformer;
using GpuAnomaly.Kernels.Vim;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace GpuAnomaly.Engine;

/// <summary>
/// An ILGPU accelerator: `cuda` (the real target) or `ilgpu-cpu` (ILGPU's CPU emulator, which
/// runs the same GPU kernels one thread at a time; for tests on small shapes). Kernels are
/// queued on the accelerator's default stream; <see cref="Synchronize"/> waits for them.
/// </summary>
public sealed class IlgpuDevice : Device
{
    private readonly Context _context;
    private readonly Lazy<Conv2dGpu> _conv;
    private readonly Lazy<Pool2dGpu> _pool;
    private readonly Lazy<ElementwiseGpu> _elementwise;
    private readonly Lazy<BroadcastGpu> _broadcast;
    private readonly Lazy<IndexMapGpu> _indexMap;
    private readonly Lazy<ReduceGpu> _reduce;
    private readonly Lazy<MatMulGpu> _matMul;
    private readonly Lazy<PoolNdGpu> _poolNd;
    private readonly Lazy<StudentTeacherScoreGpu> _studentTeacher;
    private readonly Lazy<WindowAttentionGpu> _attention;
    private readonly Lazy<LinearGpu> _linear;
    private readonly Lazy<TernaryLinearGpu> _ternaryLinear;
    private readonly Lazy<TernaryConv2dGpu> _ternaryConv;
    private readonly Lazy<LayerNormGpu> _layerNorm;
    private readonly Lazy<GeluGpu> _gelu;
    private readonly Lazy<DwConvGpu> _dwConv;
    private readonly Lazy<TokensGpu> _tokens;
    private readonly Lazy<VimGpu> _vim;
    private readonly Lazy<KnnGpu> _knn;
    private readonly Lazy<HybridMemoryGpu> _hybridMemory;
    private readonly Lazy<CoresetGpu> _coreset;
    private readonly Lazy<AxisGpu> _axis;
    private readonly Lazy<GatherElementsGpu> _gatherElements;
    private readonly Lazy<WhereGpu> _where;
    private readonly Lazy<MaxPoolIndicesGpu> _maxPoolIndices;
    private readonly Lazy<EinsumGpu> _einsum;

    private IlgpuDevice(Context context, Accelerator accelerator, string name)
    {
        _context = context;
        Accelerator = accelerator;
        Name = name;
        _conv = new(() => new Conv2dGpu(accelerator));
        _pool = new(() => new Pool2dGpu(accelerator));
        _elementwise = new(() => new ElementwiseGpu(accelerator));
        _broadcast = new(() => new BroadcastGpu(accelerator));
        _indexMap = new(() => new IndexMapGpu(accelerator));
        _reduce = new(() => new ReduceGpu(accelerator));
        _matMul = new(() => new MatMulGpu(accelerator));
        _poolNd = new(() => new PoolNdGpu(accelerator));
        _studentTeacher = new(() => new StudentTeacherScoreGpu(accelerator));
        _attention = new(() => new WindowAttentionGpu(accelerator));
        _linear = new(() => new LinearGpu(accelerator));
        _ternaryLinear = new(() => new TernaryLinearGpu(accelerator));
        _ternaryConv = new(() => new TernaryConv2dGpu(accelerator));
        _layerNorm = new(() => new LayerNormGpu(accelerator));
        _gelu = new(() => new GeluGpu(accelerator));
        _dwConv = new(() => new DwConvGpu(accelerator));
        _tokens = new(() => new TokensGpu(accelerator));
        _vim = new(() => new VimGpu(accelerator));
        _knn = new(() => new KnnGpu(accelerator));
        _hybridMemory = new(() => new HybridMemoryGpu(accelerator));
        _coreset = new(() => new CoresetGpu(accelerator));
        _axis = new(() => new AxisGpu(accelerator));
        _gatherElements = new(() => new GatherElementsGpu(accelerator));
        _where = new(() => new WhereGpu(accelerator));
        _maxPoolIndices = new(() => new MaxPoolIndicesGpu(accelerator));
        _einsum = new(() => new EinsumGpu(accelerator));
    }

    public Accelerator Accelerator { get; }
    public override string Name { get; }
    public override string Description => Accelerator.Name;
    // The CPU emulator reports 2^63 bytes; its buffers live in host memory.
    public override long MemoryBytes => Accelerator is CPUAccelerator ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : Accelerator.MemorySize;
    /// <summary>The emulator's buffers are host memory: the `cpu` device's share of it (<see cref="CpuDevice.MemoryFraction"/>'s default).</summary>
    public override long PlanBudgetBytes => Accelerator is CPUAccelerator ? (long)(MemoryBytes * _hostFraction.Value) : MemoryBytes;
    private static readonly Lazy<double> _hostFraction = new(() => new CpuDevice().MemoryFraction);
    public override int Multiprocessors => Accelerator.NumMultiprocessors;
    public override int WarpSize => Accelerator.WarpSize;
    public int MaxGroupSize => Accelerator.MaxNumThreadsPerGroup;
    public static string IlgpuVersion => typeof(Context).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>True when the CUDA driver is loadable and reports at least one device.</summary>
    public static bool CudaAvailable()
    {
        try
        {
            using var context = Context.Create(b => b.Cuda());
            return context.GetCudaDevices().Count > 0;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    public static IlgpuDevice OpenCuda(int index = 0)
    {
        Context? context = null;
        try
        {
            // Profiling enables CUDA events, which the benchmark harness times kernels with.
            context = Context.Create(b => b.Cuda().Profiling().EnableAlgorithms().EnableGpuAnomalyKernels());
            var devices = context.GetCudaDevices();
            if (devices.Count == 0)
                throw new DeviceUnavailableException("device 'cuda': no CUDA GPU found (no driver, or no device visible)");
            if (index < 0 || index >= devices.Count)
                throw new DeviceUnavailableException($"device 'cuda': index {index} out of range ({devices.Count} GPUs)");
            var acc = devices[index].CreateAccelerator(context);
            return new IlgpuDevice(context, acc, "cuda");
        }
        catch (DeviceUnavailableException)
        {
            context?.Dispose();
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            context?.Dispose();
            throw new DeviceUnavailableException($"device 'cuda': {e.Message}");
        }
    }

    /// <summary>
    /// ILGPU's CPU accelerator. Warp size 4 (ILGPU's default, so kernels cannot assume 32) and
    /// groups of up to 256 threads, the largest group our kernels launch.
    /// </summary>
    public static IlgpuDevice OpenCpuEmulator(int warpSize = 4, int warpsPerGroup = 64, int multiprocessors = 1)
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(warpSize, warpsPerGroup, multiprocessors)).Profiling().EnableAlgorithms().EnableGpuAnomalyKernels());
        var acc = context.GetCPUDevice(0).CreateAccelerator(context);
        return new IlgpuDevice(context, acc, "ilgpu-cpu");
    }

    public override DeviceMemory AllocateMemory(long bytes, string? what = null)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes));
        if (bytes > MemoryBytes) throw new DeviceOutOfMemoryException($"{Name} ({Description})", bytes, what);
        try
        {
            return new AcceleratorMemory(this, Accelerator.Allocate1D<byte>(Math.Max(bytes, 1)));
        }
        catch (Exception e) when (e is OutOfMemoryException or AcceleratorException or CudaException)
        {
            throw new DeviceOutOfMemoryException($"{Name} ({Description})", bytes, what, e);
        }
    }

    public override void CopyFromHost(ReadOnlySpan<byte> src, Tensor dst)
    {
        if (src.Length != dst.ByteLength) throw new ArgumentException($"copy of {src.Length} bytes into a tensor of {dst.ByteLength} bytes");
        dst.View<byte>().CopyFromCPU(Accelerator.DefaultStream, src);
    }

    public override void CopyToHost(Tensor src, Span<byte> dst)
    {
        if (dst.Length != src.ByteLength) throw new ArgumentException($"copy of a tensor of {src.ByteLength} bytes into {dst.Length} bytes");
        src.View<byte>().CopyToCPU(Accelerator.DefaultStream, dst);
        Accelerator.DefaultStream.Synchronize();
    }

    public override void Synchronize() => Accelerator.Synchronize();

    public Conv2dGpu ConvKernels => _conv.Value;
    public Pool2dGpu PoolKernels => _pool.Value;
    public ElementwiseGpu ElementwiseKernels => _elementwise.Value;
    /// <summary>The generic ONNX elementwise ops' kernels (broadcasting binary, unary functions).</summary>
    public BroadcastGpu BroadcastKernels => _broadcast.Value;
    /// <summary>The generic ONNX layout ops' copy kernel (transpose, slice, pad, concat, gather, expand).</summary>
    public IndexMapGpu IndexMapKernels => _indexMap.Value;
    /// <summary>The generic ONNX reductions and softmax.</summary>
    public ReduceGpu ReduceKernels => _reduce.Value;
    /// <summary>The generic ONNX batched MatMul.</summary>
    public MatMulGpu MatMulKernels => _matMul.Value;
    /// <summary>The generic ONNX 1-3-D pools (PoolNdOp).</summary>
    public PoolNdGpu PoolNdKernels => _poolNd.Value;
    /// <summary>ArgMax / ArgMin, CumSum, Hardmax, TopK (one axis of [outer, n, inner]).</summary>
    public AxisGpu AxisKernels => _axis.Value;
    public GatherElementsGpu GatherElementsKernels => _gatherElements.Value;
    /// <summary>Where with a runtime branch, Shrink.</summary>
    public WhereGpu WhereKernels => _where.Value;
    public MaxPoolIndicesGpu MaxPoolIndicesKernels => _maxPoolIndices.Value;
    public EinsumGpu EinsumKernels => _einsum.Value;
    public StudentTeacherScoreGpu StudentTeacherKernels => _studentTeacher.Value;
    public WindowAttentionGpu AttentionKernels => _attention.Value;
    public TernaryLinearGpu TernaryKernels => _ternaryLinear.Value;
    public TernaryConv2dGpu TernaryConvKernels => _ternaryConv.Value;

    protected override void RunConv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) =>
        ConvKernels.Forward(p, x.View<float>(), w.View<float>(), bias is null ? default : bias.View<float>(), y.View<float>());

    protected override void RunTernaryLinear(in TernaryLinearParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y) =>
        _ternaryLinear.Value.Forward(p, x.View<float>(), w.View<uint>(), scale.View<float>(), bias is null ? default : bias.View<float>(), y.View<float>());
    protected override void RunTernaryConv2d(in TernaryConv2dParams p, Tensor x, Tensor w, Tensor scale, Tensor? bias, Tensor y) =>
        _ternaryConv.Value.Forward(p, x.View<float>(), w.View<uint>(), scale.View<float>(), bias is null ? default : bias.View<float>(), y.View<float>());

    protected override void RunLinear(in LinearParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) =>
        _linear.Value.Forward(p, x.View<float>(), w.View<float>(), bias is null ? default : bias.View<float>(), y.View<float>());
    protected override void RunLayerNorm(in LayerNormParams p, Tensor x, Tensor weight, Tensor bias, Tensor y) =>
        _layerNorm.Value.Forward(p, x.View<float>(), weight.View<float>(), bias.View<float>(), y.View<float>());
    protected override void RunGelu(Tensor x, Tensor y) => _gelu.Value.Forward(x.View<float>(), y.View<float>());
    protected override void RunDwConv(in DwConvParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) =>
        _dwConv.Value.Forward(p, x.View<float>(), w.View<float>(), bias is null ? default : bias.View<float>(), y.View<float>());
    protected override void RunTokenMean(in TokensParams p, Tensor x, Tensor y) => _tokens.Value.Mean(p, x.View<float>(), y.View<float>());
    protected override void RunTokensFromNchw(in TokensParams p, Tensor x, Tensor y) => _tokens.Value.FromNchw(p, x.View<float>(), y.View<float>());

    protected override void RunVimScore(in VimParams p, Tensor x, Tensor w, Tensor b, Tensor o, Tensor rt, Tensor y) =>
        _vim.Value.Forward(p, x.View<float>(), w.View<float>(), b.View<float>(), o.View<float>(), rt.View<float>(), y.View<float>());

    protected override void RunWindowAttention(in WindowAttentionParams p, Tensor qkv, Tensor? padQkv, Tensor? biasTable, Tensor y) =>
        AttentionKernels.Forward(p, qkv.View<float>(), padQkv is null ? default : padQkv.View<float>(),
            biasTable is null ? default : biasTable.View<float>(), y.View<float>());

    protected override void RunRowNorms(int n, int d, Tensor rows, Tensor norms) => _knn.Value.RowNorms(n, d, rows.View<float>(), norms.View<float>());
    protected override void RunKnn(in KnnParams p, Tensor queries, Tensor bank, Tensor? bankNorms, Tensor distances, Tensor indices) =>
        _knn.Value.Forward(p, queries.View<float>(), bank.View<float>(), bankNorms is null ? default : bankNorms.View<float>(), distances.View<float>(), indices.View<int>());
    protected override void RunHybridMemoryScore(in HybridMemoryScoreParams p, Tensor queries, Tensor memory, Tensor y, Tensor best) =>
        _hybridMemory.Value.Score(p, queries.View<float>(), memory.View<float>(), y.View<float>(), best.View<int>());
    protected override void RunHybridMemoryUpdate(in HybridMemoryUpdateParams p, Tensor memory, Tensor features, Tensor indices) =>
        _hybridMemory.Value.Update(p, memory.View<float>(), features.View<float>(), indices.View<int>());
    protected override void RunCoreset(in CoresetParams p, Tensor features, Tensor? projection, Tensor selected, Tensor minDistances) =>
        _coreset.Value.Forward(p, features.View<float>(), projection is null ? default : projection.View<float>(), selected.View<int>(), minDistances.View<float>());

    protected override void RunPool2d(in Pool2dParams p, Tensor x, Tensor y) => PoolKernels.Forward(p, x.View<float>(), y.View<float>());
    protected override void RunLeakyRelu(Tensor x, float slope, Tensor y) => ElementwiseKernels.LeakyRelu(x.View<float>(), slope, y.View<float>());
    protected override void RunRelu(Tensor x, Tensor y) => ElementwiseKernels.Relu(x.View<float>(), y.View<float>());
    protected override void RunAdd(Tensor a, Tensor b, Tensor y) => ElementwiseKernels.Add(a.View<float>(), b.View<float>(), y.View<float>());

    protected override void RunStudentTeacherScore(in StudentTeacherScoreParams p, Tensor teacher, IReadOnlyList<Tensor> students,
        Tensor mu, Tensor sigma, Tensor score, Tensor? e, Tensor? v)
    {
        ArrayView<float> Student(int i) => i < students.Count ? students[i].View<float>() : default;
        StudentTeacherKernels.Forward(p, teacher.View<float>(), Student(0), Student(1), Student(2), Student(3),
            mu.View<float>(), sigma.View<float>(), score.View<float>(), e is null ? default : e.View<float>(), v is null ? default : v.View<float>());
    }

    public override void Dispose()
    {
        // Kernel classes that own device scratch release it before the accelerator goes.
        if (_ternaryLinear.IsValueCreated) _ternaryLinear.Value.Dispose();
        if (_ternaryConv.IsValueCreated) _ternaryConv.Value.Dispose();
        if (_gatherElements.IsValueCreated) _gatherElements.Value.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
