using GpuAnomaly.Engine;
using StbImageSharp;
using StbImageWriteSharp;

namespace GpuAnomaly.Cli.Images;

/// <summary>A file that is not a decodable PNG, JPEG or BMP (or cannot be read): names the file.</summary>
public sealed class ImageDecodeException(string path, string problem) : GpuAnomalyException($"{path}: {problem}")
{
    public string Path { get; } = path;
}

/// <summary>Decoded 8-bit pixels, row-major, channels interleaved (1 = gray, 3 = RGB).</summary>
public sealed record DecodedImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>
/// Image files for the CLI (the engine and models never see files): decoding with StbImageSharp,
/// conversion to a model's input tensor, PNG writing with StbImageWriteSharp.
/// </summary>
public static class ImageFile
{
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp"];

    /// <summary>The largest image file read (a 16k x 16k RGB BMP is 768 MiB; nothing a model here takes needs that).</summary>
    public const long MaxFileBytes = 256L << 20;

    public static bool IsImage(string path) => Extensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// The most pixels decoded (8192 x 8192, the largest input size a model config allows): a few hundred bytes of
    /// PNG or JPEG can claim a 60000 x 60000 image, and the decoder allocates the whole of it before reading the data.
    /// </summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>Reads and decodes <paramref name="path"/> (<see cref="Decode"/>), refusing files over <see cref="MaxFileBytes"/>.</summary>
    public static DecodedImage Load(string path, int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, not {channels}");
        byte[] bytes;
        try
        {
            // Opening a FIFO blocks until a writer comes, and a device never ends: both report size 0, like an
            // empty file, so the size is checked before anything is opened.
            long length = new FileInfo(path).Length;
            if (length == 0) throw new ImageDecodeException(path, "empty, or not a regular file (a FIFO, socket or device)");
            if (length > MaxFileBytes) throw new ImageDecodeException(path, $"{length} bytes: image files over {MaxFileBytes >> 20} MiB are refused");
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException) { throw new ImageDecodeException(path, "no such file"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ImageDecodeException(path, $"cannot read the file: {e.Message}"); }
        return Decode(path, bytes, channels);
    }

    /// <summary>
    /// Decodes PNG, JPEG or BMP bytes (<paramref name="name"/> names them in errors) and converts to
    /// <paramref name="channels"/> (1: gray, luminance as stb computes it; 3: RGB). Anything else, and images over
    /// <see cref="MaxPixels"/> (read from the header, before anything is allocated), fail with <see cref="ImageDecodeException"/>.
    /// </summary>
    public static DecodedImage Decode(string name, byte[] bytes, int channels)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, not {channels}");
        if (bytes.Length == 0) throw new ImageDecodeException(name, "empty");
        if (bytes.Length > MaxFileBytes) throw new ImageDecodeException(name, $"{bytes.Length} bytes: image files over {MaxFileBytes >> 20} MiB are refused");
        // StbImageSharp also decodes GIF, TGA, PSD, HDR, PIC and PNM, and tries TGA on anything (TGA has no
        // signature): only the three formats the CLI documents reach it.
        if (!HasKnownSignature(bytes)) throw new ImageDecodeException(name, "not a PNG, JPEG or BMP image (unknown signature)");
        if (bytes[0] == 0x89 && PngChunkProblem(bytes) is { } png) throw new ImageDecodeException(name, $"not a decodable PNG image: {png}");
        if (bytes[0] == 0xFF && JpegSegmentProblem(bytes) is { } jpeg) throw new ImageDecodeException(name, $"not a decodable JPEG image: {jpeg}");
        ImageInfo? info;
        try { info = ImageInfo.FromStream(new MemoryStream(bytes, writable: false)); }
        catch (Exception e) when (e is InvalidOperationException or IOException) { throw Undecodable(name, e); }
        if (info is not { } header) throw new ImageDecodeException(name, "not a decodable PNG, JPEG or BMP image (unreadable header)");
        if (header.Width < 1 || header.Height < 1 || (long)header.Width * header.Height > MaxPixels)
            throw new ImageDecodeException(name, $"{header.Width} x {header.Height} pixels: images over {MaxPixels} pixels (8192 x 8192) are refused");
        ImageResult image;
        // InvalidOperationException is how StbImageSharp reports an undecodable image; IOException is the MemoryStream
        // refusing a seek before its start (a PNG chunk length over 2^31 makes stb skip backwards, found by fuzzing).
        // Anything else is a bug and escapes.
        try { image = ImageResult.FromMemory(bytes, channels == 1 ? StbImageSharp.ColorComponents.Grey : StbImageSharp.ColorComponents.RedGreenBlue); }
        catch (Exception e) when (e is InvalidOperationException or IOException) { throw Undecodable(name, e); }
        if (image?.Data is null || image.Width < 1 || image.Height < 1 || (long)image.Width * image.Height > MaxPixels
            || image.Data.Length != (long)image.Width * image.Height * channels)
            throw new ImageDecodeException(name, "not a decodable PNG, JPEG or BMP image");
        return new DecodedImage(image.Width, image.Height, channels, image.Data);
    }

    private static ImageDecodeException Undecodable(string name, Exception e) =>
        new(name, $"not a decodable PNG, JPEG or BMP image ({e.Message})");

    /// <summary>
    /// Walks a PNG's chunks up to IEND before StbImageSharp sees them; null when they are whole, else the problem.
    /// Two inputs crashed the decoder with untyped exceptions when fuzzed: a chunk length over 2^31 - 1 (it seeks
    /// backwards) and an empty first IDAT chunk (valid PNG, but the port passes a null buffer for it).
    /// </summary>
    private static string? PngChunkProblem(ReadOnlySpan<byte> png)
    {
        bool data = false;
        for (int at = 8; ;)
        {
            if (png.Length - at < 12) return $"truncated: the chunk at byte {at} runs past the end of the file (no IEND)";
            uint length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png[at..]);
            if (length > int.MaxValue) return $"the chunk at byte {at} claims {length} bytes, over the PNG limit of 2^31 - 1";
            if (length > png.Length - at - 12) return $"truncated: the chunk at byte {at} claims {length} bytes, past the end of the file";
            var type = png.Slice(at + 4, 4);
            if (type.SequenceEqual("IDAT"u8))
            {
                if (length == 0 && !data) return "an empty first IDAT chunk (the decoder cannot read one)";
                data = true;
            }
            if (type.SequenceEqual("IEND"u8)) return null;
            at += 12 + (int)length;
        }
    }

    /// <summary>
    /// Walks a JPEG's marker segments (and over the entropy-coded data after each SOS) before StbImageSharp sees
    /// them; null when every segment lies within the file, else the problem. Fuzzing found that a segment length
    /// running past the end makes the decoder skip beyond the stream, after which it never sees the end: a hang.
    /// Bytes between segments and truncated scan data are left to the decoder, as before.
    /// </summary>
    private static string? JpegSegmentProblem(ReadOnlySpan<byte> jpeg)
    {
        int at = 2;
        while (at < jpeg.Length)
        {
            if (jpeg[at] != 0xFF) { at++; continue; }
            while (at < jpeg.Length && jpeg[at] == 0xFF) at++; // fill bytes
            if (at == jpeg.Length) return null;
            byte marker = jpeg[at++];
            if (marker == 0xD9) return null; // EOI
            if (marker is 0x00 or 0x01 or (>= 0xD0 and <= 0xD7)) continue; // no length: stuffed byte, TEM, RSTn
            if (jpeg.Length - at < 2) return $"truncated: the length of marker 0xFF{marker:X2} at byte {at - 2} is cut off";
            int length = (jpeg[at] << 8) | jpeg[at + 1];
            if (length < 2) return $"marker 0xFF{marker:X2} at byte {at - 2} has length {length}, less than its own 2 bytes";
            if (length > jpeg.Length - at) return $"truncated: marker 0xFF{marker:X2} at byte {at - 2} claims {length} bytes, past the end of the file";
            at += length;
            if (marker == 0xDA) // SOS: entropy-coded data up to the next marker other than a stuffed 0 or RSTn
                while (at + 1 < jpeg.Length && !(jpeg[at] == 0xFF && jpeg[at + 1] is not (0x00 or 0xFF or (>= 0xD0 and <= 0xD7)))) at++;
        }
        return null;
    }

    private static bool HasKnownSignature(ReadOnlySpan<byte> b) =>
        b.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]) // PNG
        || b.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8]) // JPEG (SOI)
        || b.StartsWith("BM"u8); // BMP

    /// <summary>
    /// The model input [C, H, W] (planar) with values pixel / 255, resized bilinearly with half-pixel centres
    /// (PyTorch's interpolate(mode="bilinear", align_corners=False), no antialiasing) when the sizes differ.
    /// </summary>
    public static float[] ToTensor(DecodedImage image, int height, int width)
    {
        int c = image.Channels;
        var t = new float[c * height * width];
        float sy = (float)image.Height / height, sx = (float)image.Width / width;
        for (int y = 0; y < height; y++)
        {
            float fy = Math.Max((y + 0.5f) * sy - 0.5f, 0f);
            int y0 = Math.Min((int)fy, image.Height - 1), y1 = Math.Min(y0 + 1, image.Height - 1);
            float wy = fy - y0;
            for (int x = 0; x < width; x++)
            {
                float fx = Math.Max((x + 0.5f) * sx - 0.5f, 0f);
                int x0 = Math.Min((int)fx, image.Width - 1), x1 = Math.Min(x0 + 1, image.Width - 1);
                float wx = fx - x0;
                for (int ch = 0; ch < c; ch++)
                {
                    float p00 = image.Pixels[(y0 * image.Width + x0) * c + ch], p01 = image.Pixels[(y0 * image.Width + x1) * c + ch];
                    float p10 = image.Pixels[(y1 * image.Width + x0) * c + ch], p11 = image.Pixels[(y1 * image.Width + x1) * c + ch];
                    float v = (1 - wy) * ((1 - wx) * p00 + wx * p01) + wy * ((1 - wx) * p10 + wx * p11);
                    t[(ch * height + y) * width + x] = v / 255f;
                }
            }
        }
        return t;
    }

    /// <summary>Writes an RGB (3 bytes per pixel) PNG atomically: a temporary file in the same folder, then a move.</summary>
    public static void WritePng(string path, byte[] rgb, int width, int height)
    {
        if (rgb.Length != width * height * 3) throw new ArgumentException($"PNG {width}x{height} needs {width * height * 3} bytes, got {rgb.Length}");
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = File.Create(tmp))
                new ImageWriter().WritePng(rgb, width, height, StbImageWriteSharp.ColorComponents.RedGreenBlue, stream);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }
}
