using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Cli.Images;

/// <summary>
/// The picture `predict` writes per image, sized for a person rather than for the model: input | heat-map overlay |
/// mask, side by side, each upscaled by an integer factor so the short side is at least <see cref="MinSide"/> px,
/// then a jet colour bar labelled 1 (top) and 0 (bottom) with a tick at the mask threshold. The image is scaled
/// nearest-neighbour (the pixels the model saw stay visible as blocks); the map bilinearly (its values are samples of
/// a smooth field, and blocks would suggest edges the model never found).
/// </summary>
public static class HeatMapPanel
{
    /// <summary>A 28x28 Fashion-MNIST input becomes 224x224, the size most viewers show without zooming.</summary>
    public const int MinSide = 224;
    /// <summary>Dark gap between the three pictures.</summary>
    public const int Gap = 4;
    /// <summary>The colour-bar column: gap, bar, gap, labels.</summary>
    public const int ScaleWidth = Gap + BarWidth + Gap + 3 * DigitScale + 3 * DigitScale + Gap;

    private const int BarWidth = 16, DigitScale = 3;
    private static readonly (byte R, byte G, byte B) Background = (24, 24, 24);

    /// <summary>The integer upscale factor for a width x height picture.</summary>
    public static int Scale(int width, int height) => Math.Max(1, (MinSide + Math.Min(width, height) - 1) / Math.Min(width, height));

    /// <summary>
    /// The RGB panel of <paramref name="image"/> (channels 1 or 3, interleaved, width x height) and its normalized map
    /// (0..1, same size); mask pixels are those with map &gt; <paramref name="threshold"/>.
    /// </summary>
    public static (byte[] Rgb, int Width, int Height) Compose(ReadOnlySpan<float> map, ReadOnlySpan<byte> image, int width, int height, int channels, float threshold = 0.5f)
    {
        if (width < 1 || height < 1 || map.Length != width * height || channels is not (1 or 3) || image.Length != map.Length * channels)
            throw new ArgumentException($"heat-map panel: a {width}x{height}x{channels} image and map do not match ({image.Length} bytes, {map.Length} values)");
        int s = Scale(width, height), pw = width * s, ph = height * s;
        int total = 3 * pw + 2 * Gap + ScaleWidth;
        var rgb = new byte[total * ph * 3];
        Fill(rgb, total, 0, 0, total, ph, Background);

        var big = Nearest(image, width, height, channels, s);
        var smooth = Bilinear(map, width, height, s);
        var overlay = HeatMap.Overlay(smooth, big, pw, ph, channels);
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
            {
                int i = y * pw + x;
                byte r = big[i * channels], g = big[i * channels + (channels == 3 ? 1 : 0)], b = big[i * channels + (channels == 3 ? 2 : 0)];
                Put(rgb, total, x, y, (r, g, b));
                Put(rgb, total, pw + Gap + x, y, (overlay[3 * i], overlay[3 * i + 1], overlay[3 * i + 2]));
                byte m = smooth[i] > threshold ? (byte)255 : (byte)0;
                Put(rgb, total, 2 * (pw + Gap) + x, y, (m, m, m));
            }
        DrawScale(rgb, total, 3 * pw + 2 * Gap, ph, threshold);
        return (rgb, total, ph);
    }

    private static void DrawScale(byte[] rgb, int stride, int x0, int height, float threshold)
    {
        int barX = x0 + Gap, pad = 5 * DigitScale / 2 + 1; // room for half a digit above and below the bar's ends
        int top = pad, bottom = height - 1 - pad;
        for (int y = top; y <= bottom; y++)
        {
            var colour = HeatMap.Jet((float)(bottom - y) / Math.Max(1, bottom - top));
            Fill(rgb, stride, barX, y, BarWidth, 1, colour);
        }
        if (threshold is >= 0f and <= 1f)
        {
            int ty = bottom - (int)MathF.Round(threshold * (bottom - top));
            Fill(rgb, stride, barX - 2, ty, BarWidth + 4, 1, (255, 255, 255)); // the mask threshold
        }
        int labelX = barX + BarWidth + Gap;
        Digit(rgb, stride, labelX, top - 5 * DigitScale / 2, 1);
        Digit(rgb, stride, labelX, bottom - 5 * DigitScale / 2, 0);
    }

    // 3x5 bitmaps, one row per 3 bits, top row first; only the two labels are needed.
    private static readonly int[][] Glyphs = [[0b111, 0b101, 0b101, 0b101, 0b111], [0b010, 0b110, 0b010, 0b010, 0b111]];

    private static void Digit(byte[] rgb, int stride, int x0, int y0, int digit)
    {
        var rows = Glyphs[digit];
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 3; c++)
                if ((rows[r] >> (2 - c) & 1) != 0) Fill(rgb, stride, x0 + c * DigitScale, y0 + r * DigitScale, DigitScale, DigitScale, (255, 255, 255));
    }

    private static byte[] Nearest(ReadOnlySpan<byte> image, int width, int height, int channels, int s)
    {
        int pw = width * s;
        var big = new byte[pw * height * s * channels];
        for (int y = 0; y < height * s; y++)
            for (int x = 0; x < pw; x++)
                for (int ch = 0; ch < channels; ch++)
                    big[(y * pw + x) * channels + ch] = image[((y / s) * width + x / s) * channels + ch];
        return big;
    }

    /// <summary>Bilinear with half-pixel centres (as <see cref="ImageFile.ToTensor"/>), clamped at the edges.</summary>
    private static float[] Bilinear(ReadOnlySpan<float> map, int width, int height, int s)
    {
        int pw = width * s, ph = height * s;
        var big = new float[pw * ph];
        for (int y = 0; y < ph; y++)
        {
            float fy = Math.Clamp((y + 0.5f) / s - 0.5f, 0f, height - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, height - 1);
            float wy = fy - y0;
            for (int x = 0; x < pw; x++)
            {
                float fx = Math.Clamp((x + 0.5f) / s - 0.5f, 0f, width - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, width - 1);
                float wx = fx - x0;
                float top = (1 - wx) * Finite(map[y0 * width + x0]) + wx * Finite(map[y0 * width + x1]);
                float bot = (1 - wx) * Finite(map[y1 * width + x0]) + wx * Finite(map[y1 * width + x1]);
                big[y * pw + x] = (1 - wy) * top + wy * bot;
            }
        }
        return big;
    }

    // A NaN or infinite pixel would spread to its neighbours through the blend; it is drawn clamped (NaN as 0), as HeatMap.Jet draws it.
    private static float Finite(float v) => float.IsNaN(v) ? 0f : Math.Clamp(v, 0f, 1f);

    private static void Put(byte[] rgb, int stride, int x, int y, (byte R, byte G, byte B) c)
    {
        int i = (y * stride + x) * 3;
        rgb[i] = c.R; rgb[i + 1] = c.G; rgb[i + 2] = c.B;
    }

    private static void Fill(byte[] rgb, int stride, int x0, int y0, int w, int h, (byte R, byte G, byte B) c)
    {
        int rows = rgb.Length / 3 / stride;
        for (int y = Math.Max(0, y0); y < Math.Min(rows, y0 + h); y++)
            for (int x = Math.Max(0, x0); x < Math.Min(stride, x0 + w); x++) Put(rgb, stride, x, y, c);
    }
}
