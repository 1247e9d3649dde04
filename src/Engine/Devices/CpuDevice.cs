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
        Conv2dCpu.Forward(p, x.Span<float>(), w.Span<float>(), bias is null ? default : bias.Span<float>(), y.Span<float>());

    protected override void RunPool2d(in Pool2dParams p, Tensor x, Tensor y) => Pool2dCpu.Forward(p, x.Span<float>(), y.Span<float>());
    protected override void RunLeakyRelu(Tensor x, float slope, Tensor y) => ElementwiseCpu.LeakyRelu(x.Span<float>(), slope, y.Span<float>());
    protected override void RunRelu(Tensor x, Tensor y) => ElementwiseCpu.Relu(x.Span<float>(), y.Span<float>());
    protected override void RunAdd(Tensor a, Tensor b, Tensor y) => ElementwiseCpu.Add(a.Span<float>(), b.Span<float>(), y.Span<float>());

    public override void Dispose() { }
}
