namespace GpuAnomaly.Engine.Onnx;

/// <summary>Element types of ONNX tensors, numbered as <c>TensorProto.DataType</c> in onnx/onnx.proto.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
    Float8E4M3FN = 17,
    Float8E4M3FNUZ = 18,
    Float8E5M2 = 19,
    Float8E5M2FNUZ = 20,
    UInt4 = 21,
    Int4 = 22,
    Float4E2M1 = 23,
    Float8E8M0 = 24,
}

public static class OnnxDataTypeExtensions
{
    /// <summary>Whether <paramref name="value"/> is a data type this reader knows (Undefined excluded).</summary>
    public static bool IsKnown(long value) => value is > 0 and <= (long)OnnxDataType.Float8E8M0;

    /// <summary>
    /// Bits per element in raw_data: 4 for the packed 4-bit types (two per byte, the first in the low nibble),
    /// 0 for String and Undefined, which have no fixed size.
    /// </summary>
    public static int Bits(this OnnxDataType t) => t switch
    {
        OnnxDataType.UInt4 or OnnxDataType.Int4 or OnnxDataType.Float4E2M1 => 4,
        OnnxDataType.UInt8 or OnnxDataType.Int8 or OnnxDataType.Bool or OnnxDataType.Float8E4M3FN or OnnxDataType.Float8E4M3FNUZ
            or OnnxDataType.Float8E5M2 or OnnxDataType.Float8E5M2FNUZ or OnnxDataType.Float8E8M0 => 8,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 16,
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 32,
        OnnxDataType.Int64 or OnnxDataType.Double or OnnxDataType.UInt64 or OnnxDataType.Complex64 => 64,
        OnnxDataType.Complex128 => 128,
        _ => 0,
    };

    /// <summary>Bytes that <paramref name="elements"/> elements occupy in raw_data (4-bit types rounded up to a byte).</summary>
    public static long RawBytes(this OnnxDataType t, long elements) =>
        t.Bits() == 4 ? (elements + 1) / 2 : elements * (t.Bits() / 8);

    /// <summary>The name onnx.proto gives the type: FLOAT, INT64, FLOAT16, ...</summary>
    public static string ProtoName(this OnnxDataType t) => t switch
    {
        OnnxDataType.Float8E4M3FN => "FLOAT8E4M3FN",
        OnnxDataType.Float8E4M3FNUZ => "FLOAT8E4M3FNUZ",
        OnnxDataType.Float8E5M2 => "FLOAT8E5M2",
        OnnxDataType.Float8E5M2FNUZ => "FLOAT8E5M2FNUZ",
        OnnxDataType.Float4E2M1 => "FLOAT4E2M1",
        OnnxDataType.Float8E8M0 => "FLOAT8E8M0",
        _ => t.ToString().ToUpperInvariant(),
    };
}
