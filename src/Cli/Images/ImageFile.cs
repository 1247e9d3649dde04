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

    /// <summary>Decodes and converts to <paramref name="channels"/> (1: gray, luminance as stb computes it; 3: RGB).</summary>
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
        ImageResult image;
        try { image = ImageResult.FromMemory(bytes, channels == 1 ? StbImageSharp.ColorComponents.Grey : StbImageSharp.ColorComponents.RedGreenBlue); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw new ImageDecodeException(path, $"not a decodable PNG, JPEG or BMP image ({e.Message})"); }
        if (image?.Data is null || image.Width < 1 || image.Height < 1 || image.Data.Length != image.Width * image.Height * channels)
            throw new ImageDecodeException(path, "not a decodable PNG, JPEG or BMP image");
        return new DecodedImage(image.Width, image.Height, channels, image.Data);
    }

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
