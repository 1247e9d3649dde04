using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Engine;

/// <summary>The `cpu` device: host memory and the managed SIMD kernels. Ops run synchronously.</summary>
public sealed class CpuDevice : Device
{
    public override string Name => "cpu";
    public override string Description =>
        $"{RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} threads, " +
        $"{(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit SIMD")}";
    public override long MemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    public override int Multiprocessors => Environment.ProcessorCount;
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

    protected override void RunConv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) =>
        Conv2dCpu.Forward(p, x.Span<float>(), PackedWeights(p, w), bias is null ? default : bias.Span<float>(), y.Span<float>());

    /// <summary>
    /// Conv weights packed once per weight tensor (a graph's weights are constants: packing them on every call
    /// cost up to ~25% of a 5x5 layer). Keyed weakly by the tensor's memory block, so an entry lives as long
    /// as the block object does, plus its byte offset (several tensors may share a block). Safe if the weights
    /// change (unless <see cref="AssumeConstantWeights"/>): each call compares the tensor's contents with the copy taken when it was packed (a sequential,
    /// vectorized compare, ~2-3% of the convolution) and repacks on any difference, so stale weights are never used.
    /// </summary>
    private readonly ConditionalWeakTable<DeviceMemory, List<PackedConvWeights>> _packedWeights = new();

    /// <summary>
    /// Skip the per-call check that cached conv weights are unchanged (it reads the weights and their copy:
    /// ~1% of a 3x3 layer, up to ~10% of a 5x5 128->256 layer when they have left the cache). Set it only
    /// when no conv weight tensor is rewritten after its first use, as for a graph's constants.
    /// </summary>
    public bool AssumeConstantWeights { get; set; }

    /// <summary>How many times conv weights were packed (cache misses): a diagnostic, read by tests.</summary>
    public int ConvWeightPacks { get; private set; }

    private sealed class PackedConvWeights(long byteOffset, float[] source, Conv2dPackedWeights packed)
    {
        public readonly long ByteOffset = byteOffset;
        public float[] Source = source;
        public Conv2dPackedWeights Packed = packed;
    }

    private Conv2dPackedWeights PackedWeights(in Conv2dParams p, Tensor w)
    {
        ReadOnlySpan<float> span = w.Span<float>();
        var entries = _packedWeights.GetOrCreateValue(w.Memory);
        lock (entries)
        {
            foreach (var e in entries)
            {
                if (e.ByteOffset != w.ByteOffset || !e.Packed.Matches(p) || e.Source.Length != span.Length) continue;
                if (AssumeConstantWeights) return e.Packed;
                // Bytewise: a vectorized memcmp (float's SequenceEqual is a scalar loop, and NaN != NaN).
                if (MemoryMarshal.AsBytes(span).SequenceEqual(MemoryMarshal.AsBytes(e.Source.AsSpan()))) return e.Packed;
                // Rewritten weights: repack. The old packed copy is left to its finalizer, since another
                // thread may still be running a convolution with it.
                e.Packed = Conv2dCpu.PackWeights(p, span);
                e.Source = span.ToArray();
                ConvWeightPacks++;
                return e.Packed;
            }
            var entry = new PackedConvWeights(w.ByteOffset, span.ToArray(), Conv2dCpu.PackWeights(p, span));
            entries.Add(entry);
            ConvWeightPacks++;
            return entry.Packed;
        }
    }

    protected override void RunPool2d(in Pool2dParams p, Tensor x, Tensor y) => Pool2dCpu.Forward(p, x.Span<float>(), y.Span<float>());
    protected override void RunLeakyRelu(Tensor x, float slope, Tensor y) => ElementwiseCpu.LeakyRelu(x.Span<float>(), slope, y.Span<float>());
    protected override void RunRelu(Tensor x, Tensor y) => ElementwiseCpu.Relu(x.Span<float>(), y.Span<float>());
    protected override void RunAdd(Tensor a, Tensor b, Tensor y) => ElementwiseCpu.Add(a.Span<float>(), b.Span<float>(), y.Span<float>());

    public override void Dispose()
    {
        foreach (var (_, entries) in _packedWeights)
            lock (entries)
            {
                foreach (var e in entries) e.Packed.Dispose();
                entries.Clear();
            }
        _packedWeights.Clear();
    }
}
