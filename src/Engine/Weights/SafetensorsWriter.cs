using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace GpuAnomaly.Engine.Weights;

/// <summary>One tensor to write: a name, a safetensors dtype tag, a shape and little-endian bytes (or floats).</summary>
public sealed class SafetensorsTensor
{
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly ReadOnlyMemory<float> _floats;
    private readonly bool _isFloats;

    /// <summary>Raw little-endian data of any known dtype tag ("F32", "BF16", "I64", ...).</summary>
    public SafetensorsTensor(string name, string dtype, int[] shape, ReadOnlyMemory<byte> data)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        DTypeTag = dtype ?? throw new ArgumentNullException(nameof(dtype));
        Shape = (int[])(shape ?? throw new ArgumentNullException(nameof(shape))).Clone();
        _bytes = data;
        ByteLength = data.Length;
    }

    public SafetensorsTensor(string name, DType dtype, int[] shape, ReadOnlyMemory<byte> data)
        : this(name, dtype.Tag(), shape, data) { }

    /// <summary>An F32 tensor, written without copying the floats.</summary>
    public SafetensorsTensor(string name, int[] shape, ReadOnlyMemory<float> data)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        DTypeTag = "F32";
        Shape = (int[])(shape ?? throw new ArgumentNullException(nameof(shape))).Clone();
        _floats = data;
        _isFloats = true;
        ByteLength = (long)data.Length * sizeof(float);
    }

    public string Name { get; }
    public string DTypeTag { get; }
    public int[] Shape { get; }
    public long ByteLength { get; }

    internal void WriteTo(Stream stream)
    {
        if (!_isFloats)
        {
            stream.Write(_bytes.Span);
        }
        else if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(_floats.Span));
        }
        else
        {
            Span<byte> b = stackalloc byte[4];
            foreach (float f in _floats.Span)
            {
                BinaryPrimitives.WriteSingleLittleEndian(b, f);
                stream.Write(b);
            }
        }
    }
}

/// <summary>
/// Writes safetensors files: tensors sorted by name (ordinal), offsets in that order, the header
/// padded with spaces so that the data starts at a multiple of 8. The file appears at its path
/// whole or not at all: it is written to a temporary file beside it, then moved over it.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> and <paramref name="metadata"/> to <paramref name="path"/>.
    /// Bad arguments (duplicate names, data that does not fill the shape, unknown dtype) throw
    /// <see cref="ArgumentException"/> before anything is written; I/O failures throw
    /// <see cref="SafetensorsException"/> and leave no file behind.
    /// </summary>
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var sorted = tensors.ToList();
        Validate(sorted, metadata);
        sorted.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        byte[] header = Header(sorted, metadata);

        string fullPath = System.IO.Path.GetFullPath(path);
        string directory = System.IO.Path.GetDirectoryName(fullPath) ?? ".";
        string temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                foreach (var t in sorted) t.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new SafetensorsException(path, null, $"cannot write the file: {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>F32 tensors from float arrays.</summary>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(t => new SafetensorsTensor(t.Name, t.Shape, t.Data)), metadata);

    /// <summary>Raw tensors of any dtype tag.</summary>
    public static void Write(string path, IEnumerable<(string Name, string DType, int[] Shape, ReadOnlyMemory<byte> Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(t => new SafetensorsTensor(t.Name, t.DType, t.Shape, t.Data)), metadata);

    private static void Validate(List<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            string what = $"safetensors write: tensor '{SafetensorsException.Printable(t.Name)}'";
            if (t.Name == SafetensorsHeader.MetadataKey) throw new ArgumentException($"{what}: the name is reserved for the metadata");
            if (!IsValidUtf16(t.Name)) throw new ArgumentException($"{what}: the name is not valid UTF-16 (a lone surrogate)");
            if (!names.Add(t.Name)) throw new ArgumentException($"{what}: duplicate name");
            if (!SafetensorsDTypes.IsKnown(t.DTypeTag))
                throw new ArgumentException($"{what}: unknown dtype '{t.DTypeTag}' (known: {string.Join(", ", SafetensorsDTypes.Tags)})");
            string shape = "[" + string.Join(", ", t.Shape) + "]";
            if (t.Shape.Any(d => d < 0)) throw new ArgumentException($"{what}: shape {shape} has a negative dimension");
            long bytes = SafetensorsDTypes.StorageBytes(t.DTypeTag, t.Shape) is { } b && b <= long.MaxValue
                ? (long)b : throw new ArgumentException($"{what}: shape {shape} is too large");
            if (bytes != t.ByteLength)
                throw new ArgumentException($"{what}: {t.DTypeTag} {shape} needs {bytes} bytes, the data holds {t.ByteLength}");
        }
        if (metadata is not null)
            foreach (var (key, value) in metadata)
                if (key is null || value is null || !IsValidUtf16(key) || !IsValidUtf16(value))
                    throw new ArgumentException($"safetensors write: metadata key '{SafetensorsException.Printable(key ?? "null")}' or its value is null or not valid UTF-16");
    }

    private static byte[] Header(List<SafetensorsTensor> sorted, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new MemoryStream();
        // Relaxed escaping keeps non-ASCII names readable (raw UTF-8, as the Python writer does).
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    w.WriteString(key, value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in sorted)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DTypeTag);
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.ByteLength;
            }
            w.WriteEndObject();
        }

        // Pad with spaces so that 8 + header length is a multiple of 8 (aligned data for mmap readers).
        long length = (json.Length + 7) / 8 * 8;
        if (length > SafetensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"safetensors write: the header would be {length} bytes, over the {SafetensorsFile.MaxHeaderBytes}-byte limit readers accept");
        var header = new byte[length];
        json.GetBuffer().AsSpan(0, (int)json.Length).CopyTo(header);
        header.AsSpan((int)json.Length).Fill((byte)' ');
        return header;
    }

    private static bool IsValidUtf16(string s)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetByteCount(s);
            return true;
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
