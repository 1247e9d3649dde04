using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace GpuAnomaly.Engine.Weights;

/// <summary>
/// A safetensors file opened for reading (see docs/FORMATS.md). <see cref="Open"/> validates the
/// whole header against the file's length before anything is trusted; tensors are then read on
/// demand at their offset, so the file is never held in memory as a whole.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted, as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafetensorsEntry> _byName;

    private SafetensorsFile(string path, SafeFileHandle handle, long dataStart, SafetensorsHeader header)
    {
        Path = path;
        _handle = handle;
        DataStart = dataStart;
        Tensors = header.Tensors;
        Metadata = header.Metadata;
        _byName = header.Tensors.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    public string Path { get; }

    /// <summary>Tensors in file order (by offset).</summary>
    public IReadOnlyList<SafetensorsEntry> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>File position of the data buffer: 8 + header length.</summary>
    public long DataStart { get; }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="SafetensorsException"/> for anything wrong with it.</summary>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new SafetensorsException(path, null, $"cannot open the file: {e.Message}", e);
        }

        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength == 0) throw new SafetensorsException(path, null, "file is empty (a safetensors file starts with an 8-byte header length)");
            if (fileLength < 8) throw new SafetensorsException(path, null, $"file is {fileLength} bytes, shorter than the 8-byte header length");

            Span<byte> prefix = stackalloc byte[8];
            ReadExactly(handle, path, prefix, 0);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderBytes)
                throw new SafetensorsException(path, null, $"header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
            if (8 + (long)headerLength > fileLength)
                throw new SafetensorsException(path, null, $"header length {headerLength} runs past the end of the file ({fileLength} bytes): the file is truncated");

            var json = new byte[headerLength];
            ReadExactly(handle, path, json, 8);
            long dataStart = 8 + (long)headerLength;
            var header = SafetensorsHeader.Parse(path, json, fileLength - dataStart);
            return new SafetensorsFile(path, handle, dataStart, header);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public bool TryGetEntry(string name, out SafetensorsEntry entry) => _byName.TryGetValue(name, out entry!);

    /// <summary>The entry named <paramref name="name"/>; <see cref="SafetensorsException"/> when there is none.</summary>
    public SafetensorsEntry this[string name] =>
        _byName.TryGetValue(name, out var e)
            ? e
            : throw new SafetensorsException(Path, name, $"no such tensor (the file holds {_byName.Count})");

    /// <summary>The tensor's raw little-endian bytes.</summary>
    public byte[] ReadBytes(string name)
    {
        var e = this[name];
        var bytes = new byte[CheckArrayLength(e, e.ByteLength, 1)];
        ReadExactly(_handle, Path, bytes, DataStart + e.Offset);
        return bytes;
    }

    /// <summary>An F32, F16 or BF16 tensor as floats (F16 and BF16 are converted exactly).</summary>
    public float[] ReadFloat32(string name)
    {
        var e = this[name];
        RequireFloat(e, "ReadFloat32");
        var result = new float[CheckArrayLength(e, e.Elements, sizeof(float))];
        ReadFloats(e, 0, result);
        return result;
    }

    /// <summary>A float tensor with its shape, as a model's weight: <see cref="ReadFloat32"/> plus the entry's shape.</summary>
    public (float[] Data, Shape Shape) ReadWeight(string name) => (ReadFloat32(name), EngineShape(this[name]));

    /// <summary>
    /// A packed ternary ("T2") weight as uint32 words [rows, Words(K)] with its shape; the codes are
    /// checked (no code 3, zero-code padding), so a corrupt file fails here, naming the tensor.
    /// </summary>
    public (uint[] Packed, Shape Shape) ReadTernary(string name)
    {
        var e = this[name];
        if (e.DTypeTag != SafetensorsDTypes.Ternary)
            throw new SafetensorsException(Path, name, $"is {e.DTypeTag}, not a packed ternary (T2) tensor");
        var bytes = ReadBytes(name);
        var packed = new uint[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, packed, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("T2 tensors are read on little-endian hosts only");
        CheckTernary(e, packed);
        return (packed, EngineShape(e));
    }

    private void CheckTernary(SafetensorsEntry e, ReadOnlySpan<uint> packed)
    {
        // A [0, K] tensor is valid safetensors (0 bytes) but no ternary matrix: Validate names it, no division by 0.
        int rows = e.Shape[0];
        int k = rows == 0 ? 0 : (int)(e.Elements / rows);
        if (GpuAnomaly.Kernels.Ternary.TernaryPacking.Validate(packed, rows, k) is { } problem)
            throw new SafetensorsException(Path, e.Name, $"packed ternary data is invalid: {problem}");
    }

    /// <summary>
    /// Uploads a tensor to <paramref name="device"/>: F32, F16 and BF16 become an F32 tensor;
    /// I8, U8, I32 and T2 (checked packed ternary codes) keep their dtype. Read in chunks, so a tensor is never held twice on the host.
    /// </summary>
    public Tensor Load(string name, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var e = this[name];
        var shape = EngineShape(e);

        if (SafetensorsDTypes.IsFloat(e.DTypeTag))
        {
            var t = device.Allocate(shape, Engine.DType.F32, $"tensor '{name}'");
            try
            {
                const int chunk = 1 << 20;
                var buffer = new float[Math.Min(chunk, e.Elements)];
                for (long done = 0; done < e.Elements; done += buffer.Length)
                {
                    int n = (int)Math.Min(buffer.Length, e.Elements - done);
                    var part = buffer.AsSpan(0, n);
                    ReadFloats(e, done, part);
                    using var slice = t.Slice(done * sizeof(float), new Shape(n), Engine.DType.F32);
                    device.CopyFromHost(MemoryMarshal.AsBytes(part), slice);
                }
                return t;
            }
            catch
            {
                t.Dispose();
                throw;
            }
        }

        if (e.DType is { } raw)
        {
            var bytes = ReadBytes(name);
            if (raw == Engine.DType.Ternary2) CheckTernary(e, MemoryMarshal.Cast<byte, uint>(bytes));
            var t = device.Allocate(shape, raw, $"tensor '{name}'");
            try
            {
                device.CopyFromHost(bytes, t);
                return t;
            }
            catch
            {
                t.Dispose();
                throw;
            }
        }

        throw new SafetensorsException(Path, name, $"dtype {e.DTypeTag} cannot be loaded as an engine tensor (supported: F32, F16, BF16, I8, U8, I32, T2); use ReadBytes");
    }

    /// <summary>
    /// Reads elements [first, first + dst.Length) of a float tensor, converting to float, and rejects NaN and
    /// infinity: a non-finite weight or statistic only ever turns outputs into NaN (or invalid JSON) far from its
    /// cause, so it fails here, naming the tensor and the element.
    /// </summary>
    private void ReadFloats(SafetensorsEntry e, long first, Span<float> dst)
    {
        ReadFloatsUnchecked(e, first, dst);
        if (FirstNonFinite(dst) is int i and >= 0)
            throw new SafetensorsException(Path, e.Name, $"element {first + i} of {e.Elements} is {dst[i]}; weights and statistics must be finite");
    }

    /// <summary>The index of the first NaN or infinity, or -1: exponent bits all ones, eight lanes at a time.</summary>
    internal static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var exponent = new System.Numerics.Vector<uint>(0x7F80_0000u);
            int width = System.Numerics.Vector<uint>.Count;
            for (; i + width <= bits.Length; i += width)
            {
                var v = new System.Numerics.Vector<uint>(bits[i..]) & exponent;
                if (System.Numerics.Vector.EqualsAny(v, exponent)) break;
            }
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & 0x7F80_0000u) == 0x7F80_0000u) return i;
        return -1;
    }

    private void ReadFloatsUnchecked(SafetensorsEntry e, long first, Span<float> dst)
    {
        long at = DataStart + e.Offset + first * e.ElementSize;
        if (e.DTypeTag == "F32")
        {
            // Reading into the float array itself: the file offset may be unaligned, the destination never is.
            var bytes = MemoryMarshal.AsBytes(dst);
            ReadExactly(_handle, Path, bytes, at);
            if (!BitConverter.IsLittleEndian)
            {
                var words = MemoryMarshal.Cast<float, uint>(dst);
                BinaryPrimitives.ReverseEndianness(words, words);
            }
            return;
        }

        // F16 / BF16: convert through a small buffer, a chunk at a time.
        const int chunk = 1 << 16;
        byte[] tmp = ArrayPool<byte>.Shared.Rent(2 * Math.Min(chunk, dst.Length));
        try
        {
            for (int start = 0; start < dst.Length; start += chunk)
            {
                var part = dst.Slice(start, Math.Min(chunk, dst.Length - start));
                var src = tmp.AsSpan(0, 2 * part.Length);
                ReadExactly(_handle, Path, src, at + 2L * start);
                if (e.DTypeTag == "F16")
                {
                    for (int i = 0; i < part.Length; i++)
                        part[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                }
                else
                {
                    // bfloat16 is the top half of a float32.
                    for (int i = 0; i < part.Length; i++)
                        part[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>
    /// The entry's shape as an engine <see cref="Shape"/>, which refuses more than 2^40 elements (counting the
    /// dimensions before a 0, so [2^31-1, 2^31-1, 0] too, though the file holds 0 bytes for it): a typed error.
    /// </summary>
    private Shape EngineShape(SafetensorsEntry e)
    {
        try { return new Shape([.. e.Shape]); }
        catch (ArgumentException ex) { throw new SafetensorsException(Path, e.Name, ex.Message, ex); }
    }

    private void RequireFloat(SafetensorsEntry e, string what)
    {
        if (!SafetensorsDTypes.IsFloat(e.DTypeTag))
            throw new SafetensorsException(Path, e.Name, $"{what} reads F32, F16 or BF16 tensors; this one is {e.DTypeTag} (use ReadBytes)");
    }

    private int CheckArrayLength(SafetensorsEntry e, long count, int elementSize)
    {
        if (count > Array.MaxLength / elementSize)
            throw new SafetensorsException(Path, e.Name, $"{count} elements do not fit in one host array; use Load");
        return (int)count;
    }

    private static void ReadExactly(SafeFileHandle handle, string path, Span<byte> dst, long offset)
    {
        try
        {
            while (!dst.IsEmpty)
            {
                int n = RandomAccess.Read(handle, dst, offset);
                if (n == 0) throw new SafetensorsException(path, null, $"file ended at byte {offset} while reading: it changed after it was opened");
                dst = dst[n..];
                offset += n;
            }
        }
        catch (IOException e)
        {
            throw new SafetensorsException(path, null, $"cannot read the file: {e.Message}", e);
        }
    }

    public void Dispose() => _handle.Dispose();

    public override string ToString() => $"{Path}: {Tensors.Count} tensors";
}
