using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuAnomaly.Engine.Onnx;

// Element decoding: each method converts only where the result is exact (widening), so an importer that asks for
// floats never gets a silently rounded INT64 or DOUBLE tensor.
public sealed partial class OnnxTensor
{
    /// <summary>FLOAT, FLOAT16 or BFLOAT16 elements as float32 (half types widened exactly).</summary>
    public float[] ToFloatArray()
    {
        switch (ElementType)
        {
            case OnnxDataType.Float:
                return SameLayout<float>();
            case OnnxDataType.Float16:
            {
                var raw = RawData().Span;
                var result = new float[CheckedCount()];
                for (int i = 0; i < result.Length; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]);
                return result;
            }
            case OnnxDataType.BFloat16:
            {
                // bfloat16 is the top half of a float32.
                var raw = RawData().Span;
                var result = new float[CheckedCount()];
                for (int i = 0; i < result.Length; i++)
                    result[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16);
                return result;
            }
            default:
                throw WrongType(nameof(ToFloatArray), "FLOAT, FLOAT16 or BFLOAT16");
        }
    }

    /// <summary>DOUBLE, FLOAT, FLOAT16 or BFLOAT16 elements as float64.</summary>
    public double[] ToDoubleArray()
    {
        if (ElementType == OnnxDataType.Double) return SameLayout<double>();
        if (ElementType is not (OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16))
            throw WrongType(nameof(ToDoubleArray), "DOUBLE, FLOAT, FLOAT16 or BFLOAT16");
        return Array.ConvertAll(ToFloatArray(), f => (double)f);
    }

    /// <summary>Integer or BOOL elements as int64; UINT64 values above long.MaxValue are refused, naming the element.</summary>
    public long[] ToInt64Array()
    {
        if (ElementType == OnnxDataType.Int64) return SameLayout<long>();
        RequireInteger(nameof(ToInt64Array), "INT64, INT32, INT16, INT8, UINT64, UINT32, UINT16, UINT8 or BOOL");
        var raw = RawData().Span;
        var result = new long[CheckedCount()];
        for (int i = 0; i < result.Length; i++)
        {
            if (ElementType == OnnxDataType.UInt64 && BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..]) > long.MaxValue)
                throw Error($"element {i} is {BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..])}, above the int64 range (ToInt64Array)");
            result[i] = Integer(raw, i);
        }
        return result;
    }

    /// <summary>Integer or BOOL elements as int32 (INT64, UINT32 and UINT64 range-checked, naming the first value out of range).</summary>
    public int[] ToInt32Array()
    {
        if (ElementType == OnnxDataType.Int32) return SameLayout<int>();
        RequireInteger(nameof(ToInt32Array), "INT32, INT16, INT8, UINT16, UINT8, BOOL, or INT64 / UINT32 / UINT64 values in the int32 range");
        var raw = RawData().Span;
        var result = new int[CheckedCount()];
        for (int i = 0; i < result.Length; i++)
        {
            if (ElementType == OnnxDataType.UInt64 && BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..]) is var u and > int.MaxValue)
                throw Error($"element {i} is {u}, out of the int32 range (ToInt32Array)");
            long v = Integer(raw, i);
            if (v is < int.MinValue or > int.MaxValue) throw Error($"element {i} is {v}, out of the int32 range (ToInt32Array)");
            result[i] = (int)v;
        }
        return result;
    }

    /// <summary>BOOL elements (any non-zero byte is true).</summary>
    public bool[] ToBoolArray()
    {
        if (ElementType != OnnxDataType.Bool) throw WrongType(nameof(ToBoolArray), "BOOL");
        var raw = RawData().Span;
        var result = new bool[CheckedCount()];
        for (int i = 0; i < result.Length; i++) result[i] = raw[i] != 0;
        return result;
    }

    /// <summary>UINT8 elements.</summary>
    public byte[] ToByteArray() =>
        ElementType == OnnxDataType.UInt8 ? SameLayout<byte>() : throw WrongType(nameof(ToByteArray), "UINT8");

    /// <summary>INT8 elements.</summary>
    public sbyte[] ToSByteArray() =>
        ElementType == OnnxDataType.Int8 ? SameLayout<sbyte>() : throw WrongType(nameof(ToSByteArray), "INT8");

    /// <summary>FLOAT16 elements as <see cref="Half"/>, bit for bit.</summary>
    public Half[] ToHalfArray() =>
        ElementType == OnnxDataType.Float16 ? SameLayout<Half>() : throw WrongType(nameof(ToHalfArray), "FLOAT16");

    /// <summary>STRING elements, decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public string[] ToStringArray()
    {
        if (ElementType != OnnxDataType.String) throw WrongType(nameof(ToStringArray), "STRING");
        return _strings is null ? [] : Array.ConvertAll(_strings, s => Encoding.UTF8.GetString(s.Span));
    }

    /// <summary>
    /// The elements as raw_data lays them out (little-endian, 4-bit types two per byte): the file's own bytes for raw
    /// data (no copy), a fresh buffer for external data (read from its file) and for the typed fields (encoded).
    /// Not for STRING tensors.
    /// </summary>
    public ReadOnlyMemory<byte> RawData()
    {
        if (ElementType == OnnxDataType.String) throw WrongType(nameof(RawData), "any type but STRING");
        if (Storage == OnnxTensorStorage.Raw) return _raw;
        if (ByteLength > Array.MaxLength) throw Error($"{ByteLength} bytes do not fit in one array");
        var bytes = new byte[ByteLength];
        CopyRaw(bytes);
        return bytes;
    }

    /// <summary>The elements as a T[] whose in-memory layout is raw_data's (on a little-endian host): one copy, straight from the source.</summary>
    private T[] SameLayout<T>() where T : unmanaged
    {
        if (_typed is T[] typed) return (T[])typed.Clone();
        var result = new T[CheckedCount()];
        var bytes = MemoryMarshal.AsBytes(result.AsSpan());
        CopyRaw(bytes);
        if (!BitConverter.IsLittleEndian) ReverseEndianness(bytes, Marshal.SizeOf<T>());
        return result;
    }

    private void CopyRaw(Span<byte> dst)
    {
        switch (Storage)
        {
            case OnnxTensorStorage.Raw: _raw.Span.CopyTo(dst); break;
            case OnnxTensorStorage.External: ReadExternal(External!, dst); break;
            case OnnxTensorStorage.Typed: EncodeTyped(dst); break;
        }
    }

    /// <summary>Typed-field values written in raw_data layout; their ranges were checked when the tensor was read.</summary>
    private void EncodeTyped(Span<byte> dst)
    {
        switch (_typed)
        {
            case float[] f: for (int i = 0; i < f.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], f[i]); break;
            case double[] d: for (int i = 0; i < d.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(dst[(8 * i)..], d[i]); break;
            case long[] l: for (int i = 0; i < l.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(dst[(8 * i)..], l[i]); break;
            case ulong[] u when ElementType == OnnxDataType.UInt32:
                for (int i = 0; i < u.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(dst[(4 * i)..], (uint)u[i]);
                break;
            case ulong[] u: for (int i = 0; i < u.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(dst[(8 * i)..], u[i]); break;
            case int[] v:
                int bits = ElementType.Bits() == 4 ? 8 : ElementType.Bits(); // 4-bit types: one int32 per packed byte
                for (int i = 0; i < v.Length; i++)
                {
                    if (bits == 32) BinaryPrimitives.WriteInt32LittleEndian(dst[(4 * i)..], v[i]);
                    else if (bits == 16) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], unchecked((ushort)v[i]));
                    else dst[i] = unchecked((byte)v[i]);
                }
                break;
        }
    }

    private static void ReverseEndianness(Span<byte> bytes, int size)
    {
        if (size == 1) return;
        for (int i = 0; i + size <= bytes.Length; i += size) bytes.Slice(i, size).Reverse();
    }

    private void ReadExternal(OnnxExternalData e, Span<byte> dst)
    {
        try
        {
            using var handle = System.IO.File.OpenHandle(e.FullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            long at = e.Offset;
            while (!dst.IsEmpty)
            {
                int n = RandomAccess.Read(handle, dst, at);
                if (n == 0) throw Error($"external data file {OnnxFormatException.Quote(e.Location)} ended at byte {at}: it changed after the model was read");
                dst = dst[n..];
                at += n;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Error($"cannot read external data file {OnnxFormatException.Quote(e.Location)}: {ex.Message}", ex);
        }
    }

    /// <summary>Element <paramref name="i"/> of an integer or BOOL tensor in raw layout, widened to int64 (UINT64 as its bits).</summary>
    private long Integer(ReadOnlySpan<byte> raw, int i) => ElementType switch
    {
        OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]),
        OnnxDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(raw[(2 * i)..]),
        OnnxDataType.Int8 => (sbyte)raw[i],
        OnnxDataType.UInt8 => raw[i],
        OnnxDataType.Bool => raw[i] != 0 ? 1 : 0,
        OnnxDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]),
        OnnxDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(raw[(4 * i)..]),
        OnnxDataType.UInt64 => unchecked((long)BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..])),
        _ => BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * i)..]),
    };

    private void RequireInteger(string method, string types)
    {
        if (ElementType is not (OnnxDataType.Int64 or OnnxDataType.Int32 or OnnxDataType.Int16 or OnnxDataType.Int8 or OnnxDataType.UInt64
            or OnnxDataType.UInt32 or OnnxDataType.UInt16 or OnnxDataType.UInt8 or OnnxDataType.Bool))
            throw WrongType(method, types);
    }

    private int CheckedCount() =>
        ElementCount <= Array.MaxLength ? (int)ElementCount : throw Error($"{ElementCount} elements do not fit in one array");

    private OnnxFormatException WrongType(string method, string types) =>
        Error($"is {ElementType.ProtoName()}; {method} reads {types}");

    private OnnxFormatException Error(string problem, Exception? inner = null) => new(File, Location, problem, inner);
}
