using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Getting an ONNX file's bytes to the parser: reading the file with typed errors, and telling apart the files people
/// mistake for ONNX (a PNG, a safetensors file, a PyTorch checkpoint), which would otherwise fail deep in the
/// protobuf with a message about wire types.
/// </summary>
internal static class OnnxFile
{
    /// <summary>Protobuf messages are limited to 2 GiB; larger weights belong in external data.</summary>
    public const long MaxFileBytes = int.MaxValue;

    public static (byte[] Buffer, string BaseDirectory) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            if (Directory.Exists(path)) throw new OnnxFormatException(path, null, "is a directory, not an ONNX file");
            if (!File.Exists(path)) throw new OnnxFormatException(path, null, "no such file");
            long length = new FileInfo(path).Length;
            if (length > MaxFileBytes)
                throw new OnnxFormatException(path, null, $"is {DeviceOutOfMemoryException.FormatBytes(length)}, more than the 2 GiB a protobuf message can hold " +
                                                          "(large models keep their weights in external data files)");
            string directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? Directory.GetCurrentDirectory();
            return (ReadExactly(path, length), directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new OnnxFormatException(path, null, $"cannot read the file: {e.Message}", e);
        }
    }

    /// <summary>
    /// The file's <paramref name="length"/> bytes, and not one more: File.ReadAllBytes would read a device such as
    /// /dev/zero (length 0, endless) until memory runs out.
    /// </summary>
    private static byte[] ReadExactly(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var buffer = new byte[length];
        int read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (read < buffer.Length) throw new OnnxFormatException(path, null, $"file ended at byte {read} of {length} while reading: it changed meanwhile");
        if (stream.ReadByte() >= 0) throw new OnnxFormatException(path, null, $"holds more than the {length} bytes its size says: a device or a file being written, not an ONNX file");
        return buffer;
    }

    /// <summary>The reader of the file's root message, after refusing empty and foreign files.</summary>
    public static ProtoReader Root(ReadOnlyMemory<byte> bytes, string displayName, string location, string what)
    {
        if (bytes.IsEmpty) throw new OnnxFormatException(displayName, null, $"file is empty, not {what}");
        if (Foreign(bytes.Span) is { } kind) throw new OnnxFormatException(displayName, null, $"is {kind}, not {what}");
        if (!MemoryMarshal.TryGetArray(bytes, out ArraySegment<byte> segment)) segment = bytes.ToArray();
        return new ProtoReader(displayName, segment.Array!, segment.Offset, segment.Count, location);
    }

    // Signatures with bytes above 0x7F: a u8 literal would encode "\x89" as UTF-8, two bytes.
    private static ReadOnlySpan<byte> Png => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static ReadOnlySpan<byte> Jpeg => [0xFF, 0xD8, 0xFF];
    private static ReadOnlySpan<byte> Gzip => [0x1F, 0x8B];
    private static ReadOnlySpan<byte> Npy => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>What the bytes are when they are a well-known non-ONNX format, else null.</summary>
    public static string? Foreign(ReadOnlySpan<byte> b)
    {
        if (b.StartsWith(Png)) return "a PNG image";
        if (b.StartsWith(Jpeg)) return "a JPEG image";
        if (b.StartsWith("GIF8"u8)) return "a GIF image";
        if (b.StartsWith("BM"u8) && b.Length >= 14 && BinaryPrimitives.ReadUInt32LittleEndian(b[2..]) == b.Length) return "a BMP image";
        if (b.StartsWith("PK\x03\x04"u8))
            return "a ZIP archive (a PyTorch .pt/.pth checkpoint is one: export the model with torch.onnx.export)";
        if (b.StartsWith(Gzip)) return "a gzip file (decompress it first)";
        if (b.StartsWith(Npy)) return "a NumPy .npy file";
        if (b.Length >= 2 && b[0] == 0x80 && b[1] is >= 2 and <= 5) return "a Python pickle";
        if (b.Length >= 9 && b[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(b) is var header && header <= (ulong)(b.Length - 8))
            return "a safetensors file (use it as a weights file, e.g. `gpuanomaly inspect`)";
        if (IsText(b[..Math.Min(b.Length, 256)])) return "a text file";
        return null;
    }

    /// <summary>Printable ASCII and whitespace only: a serialized model starts with a tag byte such as 0x08, which is neither.</summary>
    private static bool IsText(ReadOnlySpan<byte> b)
    {
        foreach (byte c in b)
            if (c is not ((>= 0x20 and < 0x7F) or (byte)'\t' or (byte)'\n' or (byte)'\r')) return false;
        return true;
    }
}
