using System.Text;
using Google.Protobuf;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// Writes protobuf messages field by field, so a test can build ONNX files the Python API refuses to make: wrong wire
/// types, giant lengths, unknown fields. <see cref="Raw"/> appends arbitrary bytes.
/// </summary>
public sealed class ProtoBuilder
{
    private readonly MemoryStream _bytes = new();

    public ProtoBuilder Tag(int field, WireFormat.WireType wireType) => Raw(Varint((ulong)field << 3 | (uint)wireType));

    public ProtoBuilder Int(int field, long value) => Tag(field, WireFormat.WireType.Varint).Raw(Varint((ulong)value));

    public ProtoBuilder Float(int field, float value) => Tag(field, WireFormat.WireType.Fixed32).Raw(BitConverter.GetBytes(value));

    public ProtoBuilder Bytes(int field, byte[] value) => Tag(field, WireFormat.WireType.LengthDelimited).Raw(Varint((ulong)value.Length)).Raw(value);

    public ProtoBuilder String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoBuilder Message(int field, ProtoBuilder message) => Bytes(field, message.ToArray());

    /// <summary>A packed repeated varint field.</summary>
    public ProtoBuilder Packed(int field, params long[] values)
    {
        var run = new MemoryStream();
        foreach (long v in values) run.Write(Varint((ulong)v));
        return Bytes(field, run.ToArray());
    }

    public ProtoBuilder Raw(byte[] bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    public byte[] ToArray() => _bytes.ToArray();

    public static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        do
        {
            byte next = (byte)(v & 0x7F);
            v >>= 7;
            b.Add(v != 0 ? (byte)(next | 0x80) : next);
        } while (v != 0);
        return [.. b];
    }
}
