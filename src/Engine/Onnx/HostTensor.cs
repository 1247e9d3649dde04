namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// A tensor known at import (an initializer, a Constant, a bound input or a folded value): its ONNX element type and
/// its values as float64, which hold every float32, float16 and bool exactly and integers up to 2^53 (shape arithmetic
/// stays far below).
/// </summary>
public sealed class HostTensor
{
    public HostTensor(OnnxDataType type, int[] dims, double[] data)
    {
        Shape = new Shape(dims);
        if (data.Length != Shape.Elements) throw new ArgumentException($"{data.Length} values for shape {Shape}");
        Type = type;
        Data = data;
    }

    public OnnxDataType Type { get; }
    public Shape Shape { get; }
    public double[] Data { get; }
    public int[] Dims => Shape.Dims.ToArray();

    public static HostTensor Scalar(OnnxDataType type, double v) => new(type, [], [v]);
    public static HostTensor Vector(OnnxDataType type, IEnumerable<long> v) { var a = v.Select(x => (double)x).ToArray(); return new(type, [a.Length], a); }

    public bool IsFloat => IsFloatType(Type);
    public static bool IsFloatType(OnnxDataType t) => t is OnnxDataType.Float or OnnxDataType.Double or OnnxDataType.Float16 or OnnxDataType.BFloat16;

    /// <summary>The values as int64 (shapes, axes, indices).</summary>
    // Clamped to +-2^62: exporters write INT64_MAX / INT64_MIN as "to the end" in Slice, which a double cannot cast back exactly.
    public long[] Longs() => Array.ConvertAll(Data, d => (long)Math.Clamp(d, -4.6e18, 4.6e18));

    public float[] Floats() => Array.ConvertAll(Data, d => (float)d);

    /// <summary>Reads a tensor of a type the importer can compute with; others are an <see cref="OnnxImportException"/>.</summary>
    public static HostTensor From(OnnxTensor t)
    {
        var dims = t.Dims.Select(d => checked((int)d)).ToArray();
        if (IsFloatType(t.ElementType)) return new(t.ElementType, dims, t.ToDoubleArray());
        if (t.ElementType is OnnxDataType.Int64 or OnnxDataType.Int32 or OnnxDataType.Int16 or OnnxDataType.Int8 or OnnxDataType.UInt8
            or OnnxDataType.UInt16 or OnnxDataType.UInt32 or OnnxDataType.UInt64 or OnnxDataType.Bool)
            return new(t.ElementType, dims, Array.ConvertAll(t.ToInt64Array(), v => (double)v));
        if (t.ElementType == OnnxDataType.String) throw new OnnxFeatureException(t.File, t.Location, "STRING tensors");
        throw new OnnxImportException(t.File, t.Location, $"tensor '{t.Name}' is {t.ElementType.ProtoName()}, a type the importer does not compute with");
    }

    /// <summary>Rounds values to what the element type holds (integers truncate as ONNX's Cast and integer Div do).</summary>
    public static double Round(OnnxDataType t, double v) => t switch
    {
        OnnxDataType.Float => (float)v,
        OnnxDataType.Float16 => (double)(Half)v,
        OnnxDataType.BFloat16 => NdMath.TruncateToBFloat16((float)v),
        OnnxDataType.Double => v,
        OnnxDataType.Bool => v != 0 ? 1 : 0,
        _ => double.IsFinite(v) ? Math.Truncate(v) : 0,
    };
}
