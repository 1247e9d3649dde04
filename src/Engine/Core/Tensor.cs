using System.Runtime.InteropServices;
using ILGPU;

namespace GpuAnomaly.Engine;

/// <summary>
/// A block of memory on a <see cref="Engine.Device"/>, owned by the tensor that allocated it
/// and released by its Dispose. Views (<see cref="Tensor.Slice"/>) share the block and own nothing.
/// </summary>
public abstract class DeviceMemory : IDisposable
{
    protected DeviceMemory(Device device, long bytes)
    {
        Device = device;
        Bytes = bytes;
    }

    public Device Device { get; }
    public long Bytes { get; }
    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

/// <summary>A typed, shaped window onto <see cref="DeviceMemory"/>.</summary>
public sealed class Tensor : IDisposable
{
    private readonly bool _ownsMemory;

    internal Tensor(DeviceMemory memory, long byteOffset, Shape shape, DType dtype, bool ownsMemory)
    {
        long bytes = dtype.StorageBytes(shape);
        if (byteOffset < 0 || byteOffset + bytes > memory.Bytes)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"tensor {shape} {dtype} at byte {byteOffset} does not fit in a block of {memory.Bytes} bytes");
        Memory = memory;
        ByteOffset = byteOffset;
        ByteLength = bytes;
        Shape = shape;
        DType = dtype;
        _ownsMemory = ownsMemory;
    }

    public Device Device => Memory.Device;
    public DeviceMemory Memory { get; }

    /// <summary>
    /// A constant (a graph's weights): its contents never change again, so devices may cache data
    /// derived from it (the cpu device keeps conv weights packed for its GEMM). <see cref="CopyFrom"/>
    /// refuses to write a constant; writing through <see cref="Span{T}"/> afterwards breaks the contract.
    /// </summary>
    public bool IsConstant { get; private set; }

    /// <summary>Declares the contents final (see <see cref="IsConstant"/>). The executor marks the constants it uploads.</summary>
    public Tensor MarkConstant()
    {
        IsConstant = true;
        return this;
    }
    public long ByteOffset { get; }
    public long ByteLength { get; }
    public Shape Shape { get; }
    public DType DType { get; }
    public long Elements => Shape.Elements;

    /// <summary>A view of the same memory with another shape / offset; it does not own the memory.</summary>
    public Tensor Slice(long byteOffset, Shape shape, DType dtype) =>
        new(Memory, ByteOffset + byteOffset, shape, dtype, ownsMemory: false);

    /// <summary>The same elements under another shape of equal size.</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.Elements != Shape.Elements)
            throw new ArgumentException($"cannot reshape {Shape} ({Shape.Elements} elements) to {shape} ({shape.Elements} elements)");
        return new Tensor(Memory, ByteOffset, shape, DType, ownsMemory: false);
    }

    /// <summary>Host memory of a tensor on the `cpu` device.</summary>
    public unsafe Span<T> Span<T>() where T : unmanaged
    {
        if (Memory is not HostMemory host)
            throw new InvalidOperationException($"tensor {Shape} lives on {Device.Name}; only cpu tensors expose host spans");
        CheckAlive();
        return new Span<T>((byte*)host.Pointer + ByteOffset, checked((int)(ByteLength / sizeof(T))));
    }

    /// <summary>The ILGPU view of a tensor on an ILGPU accelerator (cuda, ilgpu-cpu).</summary>
    public ArrayView<T> View<T>() where T : unmanaged
    {
        if (Memory is not AcceleratorMemory acc)
            throw new InvalidOperationException($"tensor {Shape} lives on {Device.Name}; only ILGPU tensors expose array views");
        CheckAlive();
        return acc.Buffer.View.AsContiguous().SubView(ByteOffset, ByteLength).Cast<T>();
    }

    /// <summary>Copies host data into the tensor (length must match).</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Elements || DType != DType.F32)
            throw new ArgumentException($"cannot copy {data.Length} floats into a {DType} tensor of shape {Shape}");
        if (IsConstant) throw new InvalidOperationException($"tensor {Shape} is a constant: its contents cannot change");
        Device.CopyFromHost(MemoryMarshal.AsBytes(data), this);
    }

    /// <summary>Copies the tensor to a new host array.</summary>
    public float[] ToArray()
    {
        if (DType != DType.F32) throw new InvalidOperationException($"ToArray reads F32 tensors; this one is {DType}");
        var result = new float[Elements];
        Device.CopyToHost(this, MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    private void CheckAlive()
    {
        if (Memory.IsDisposed) throw new ObjectDisposedException(nameof(Tensor), $"tensor {Shape} was disposed");
    }

    public void Dispose()
    {
        if (_ownsMemory) Memory.Dispose();
    }

    public override string ToString() => $"Tensor({Shape}, {DType}, {Device.Name})";
}

/// <summary>64-byte aligned native memory for the `cpu` device (any size, freed deterministically).</summary>
internal sealed unsafe class HostMemory : DeviceMemory
{
    public HostMemory(Device device, long bytes) : base(device, bytes)
    {
        Pointer = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        if (Pointer == null) throw new OutOfMemoryException();
        GC.AddMemoryPressure(Math.Max(bytes, 1));
    }

    public void* Pointer { get; private set; }

    protected override void Release()
    {
        NativeMemory.AlignedFree(Pointer);
        GC.RemoveMemoryPressure(Math.Max(Bytes, 1));
        Pointer = null;
    }

    ~HostMemory() => Dispose();
}

/// <summary>A byte buffer on an ILGPU accelerator.</summary>
internal sealed class AcceleratorMemory : DeviceMemory
{
    public AcceleratorMemory(Device device, ILGPU.Runtime.MemoryBuffer1D<byte, Stride1D.Dense> buffer) : base(device, buffer.Length)
        => Buffer = buffer;

    public ILGPU.Runtime.MemoryBuffer1D<byte, Stride1D.Dense> Buffer { get; }

    protected override void Release() => Buffer.Dispose();
}
