using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>A .npy file that is not one this reader takes; names the file and the problem.</summary>
public sealed class NpyFormatException(string file, string problem) : GpuAnomalyException($"{file}: {problem}")
{
    public string File { get; } = file;
}

/// <summary>
/// NumPy's .npy format (versions 1 to 3) for the `run` command: float32, float64, int64, int32 and bool arrays, C order,
/// little endian. Every header field and the data size are checked before the data is read.
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static HostTensor Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new NpyFormatException(path, Directory.Exists(path) ? "is a directory" : "no such file");
        if (info.Length > 1L << 31) throw new NpyFormatException(path, $"is {info.Length} bytes; .npy inputs are limited to 2 GiB");
        return Parse(File.ReadAllBytes(path), path);
    }

    public static HostTensor Parse(byte[] b, string name)
    {
        if (b.Length < 10 || !b.AsSpan(0, 6).SequenceEqual(Magic)) throw new NpyFormatException(name, "is not a .npy file (no \\x93NUMPY magic)");
        int major = b[6];
        if (major is < 1 or > 3) throw new NpyFormatException(name, $".npy version {major}.{b[7]} is not supported (1 to 3)");
        long headerLen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)) : b.Length >= 12 ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8)) : -1;
        int start = major == 1 ? 10 : 12;
        if (headerLen < 0 || start + headerLen > b.Length) throw new NpyFormatException(name, "the header runs past the end of the file");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(b, start, (int)headerLen);
        var m = HeaderPattern().Match(header);
        if (!m.Success) throw new NpyFormatException(name, $"header {header.Trim()} is not a dict of descr, fortran_order and shape");
        string descr = m.Groups["descr"].Value;
        if (m.Groups["fortran"].Value == "True") throw new NpyFormatException(name, "is in Fortran order; write it C-contiguous (np.ascontiguousarray)");
        var dims = new List<int>();
        foreach (var part in m.Groups["shape"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int d))
                throw new NpyFormatException(name, $"shape entry '{part}' is not a dimension");
            dims.Add(d);
        }
        Shape shape;
        try { shape = new Shape([.. dims]); }
        catch (ArgumentException e) { throw new NpyFormatException(name, e.Message); }
        var (type, size) = descr switch
        {
            "<f4" => (OnnxDataType.Float, 4),
            "<f8" => (OnnxDataType.Double, 8),
            "<i8" => (OnnxDataType.Int64, 8),
            "<i4" => (OnnxDataType.Int32, 4),
            "|b1" => (OnnxDataType.Bool, 1),
            _ => throw new NpyFormatException(name, $"dtype '{descr}' is not supported (float32, float64, int64, int32, bool, little endian)"),
        };
        long data = start + headerLen;
        if (b.Length - data != shape.Elements * size)
            throw new NpyFormatException(name, $"holds {b.Length - data} data bytes; shape {shape} of {descr} needs {shape.Elements * size}");
        var values = new double[shape.Elements];
        var s = b.AsSpan((int)data);
        for (int i = 0; i < values.Length; i++)
            values[i] = type switch
            {
                OnnxDataType.Float => BinaryPrimitives.ReadSingleLittleEndian(s[(4 * i)..]),
                OnnxDataType.Double => BinaryPrimitives.ReadDoubleLittleEndian(s[(8 * i)..]),
                OnnxDataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(s[(8 * i)..]),
                OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(s[(4 * i)..]),
                _ => s[i] != 0 ? 1 : 0,
            };
        return new HostTensor(type, [.. dims], values);
    }

    /// <summary>Writes a tensor as .npy v1 in its ONNX type (float16 and other types as float32; unsigned and small ints as int64).</summary>
    public static void Write(string path, HostTensor t)
    {
        var (descr, size) = t.Type switch
        {
            OnnxDataType.Double => ("<f8", 8),
            OnnxDataType.Int32 => ("<i4", 4),
            OnnxDataType.Bool => ("|b1", 1),
            _ when !t.IsFloat => ("<i8", 8),
            _ => ("<f4", 4),
        };
        string shape = t.Shape.Rank == 1 ? $"({t.Shape[0]},)" : $"({string.Join(", ", t.Shape.Dims.ToArray())})";
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        int pad = 64 - (10 + header.Length + 1) % 64;
        header = header + new string(' ', pad % 64) + "\n";
        var buf = new byte[t.Data.Length * size];
        for (int i = 0; i < t.Data.Length; i++)
            switch (descr)
            {
                case "<f8": BinaryPrimitives.WriteDoubleLittleEndian(buf.AsSpan(8 * i), t.Data[i]); break;
                case "<i8": BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(8 * i), (long)t.Data[i]); break;
                case "<i4": BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(4 * i), (int)t.Data[i]); break;
                case "|b1": buf[i] = t.Data[i] != 0 ? (byte)1 : (byte)0; break;
                default: BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * i), (float)t.Data[i]); break;
            }
        // Written beside the target and moved over it: a failed write (disk full) never leaves a half-written .npy.
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                f.Write(Magic);
                f.Write([1, 0]);
                Span<byte> len = stackalloc byte[2];
                BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
                f.Write(len);
                f.Write(Encoding.Latin1.GetBytes(header));
                f.Write(buf);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new GpuAnomalyException($"{path}: cannot write the file: {e.Message}", e);
        }
    }

    [GeneratedRegex(@"^\s*\{\s*(?:(?:'descr'\s*:\s*'(?<descr>[^']*)'|'fortran_order'\s*:\s*(?<fortran>True|False)|'shape'\s*:\s*\((?<shape>[0-9,\s]*)\))\s*,?\s*){3}\}\s*$")]
    private static partial Regex HeaderPattern();
}
