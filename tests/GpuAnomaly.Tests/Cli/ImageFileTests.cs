using GpuAnomaly.Cli.Images;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

public class ImageFileTests
{
    [Fact]
    public void Png_RoundTrips_GrayAndRgb()
    {
        string path = Path.Combine(Path.GetTempPath(), $"img-{Guid.NewGuid():N}.png");
        try
        {
            var rng = KernelLab.NewRng(out int seed);
            int w = rng.Next(1, 40), h = rng.Next(1, 40);
            var rgb = new byte[w * h * 3];
            rng.NextBytes(rgb);
            ImageFile.WritePng(path, rgb, w, h);
            var back = ImageFile.Load(path, 3);
            Assert.True(back.Width == w && back.Height == h, $"seed {seed}");
            Assert.Equal(rgb, back.Pixels);
            var gray = ImageFile.Load(path, 1);
            Assert.Equal(w * h, gray.Pixels.Length);
            var t = ImageFile.ToTensor(back, h, w); // same size: planar copy / 255
            Assert.Equal(rgb[3 * (w * h - 1) + 2] / 255f, t[2 * w * h + w * h - 1]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ToTensor_ResizesLikePyTorchBilinear()
    {
        // F.interpolate([[10,20,30],[40,50,60]], size=(4,5), mode="bilinear", align_corners=False) / 255, from PyTorch 1.13.
        float[] expected = [0.0392f, 0.0549f, 0.0784f, 0.102f, 0.1176f, 0.0686f, 0.0843f, 0.1078f, 0.1314f, 0.1471f,
            0.1275f, 0.1431f, 0.1667f, 0.1902f, 0.2059f, 0.1569f, 0.1725f, 0.1961f, 0.2196f, 0.2353f];
        var t = ImageFile.ToTensor(new DecodedImage(3, 2, 1, [10, 20, 30, 40, 50, 60]), 4, 5);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], t[i], 4);
    }

    [Fact]
    public void Undecodable_NamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.png");
        try
        {
            File.WriteAllBytes(path, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
            var e = Assert.Throws<ImageDecodeException>(() => ImageFile.Load(path, 1));
            Assert.Contains(Path.GetFileName(path), e.Message);
            Assert.Throws<ImageDecodeException>(() => ImageFile.Load(path + ".missing", 1));
        }
        finally { File.Delete(path); }
    }
    [Fact]
    public void Decode_RefusesHugePixelCounts_FromTheHeader()
    {
        // A 57-byte gray PNG claiming 30000 x 30000: within StbImageSharp's own limit (2^30 bytes of source samples),
        // and decoded to RGB it would take 0.9 + 2.7 GB before a byte of data is checked.
        var png = new List<byte> { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };
        void Chunk(string type, byte[] data)
        {
            png.AddRange([(byte)(data.Length >> 24), (byte)(data.Length >> 16), (byte)(data.Length >> 8), (byte)data.Length]);
            png.AddRange(System.Text.Encoding.ASCII.GetBytes(type));
            png.AddRange(data);
            png.AddRange([0, 0, 0, 0]); // CRC, not checked by the decoder
        }
        Chunk("IHDR", [0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30, 8, 0, 0, 0, 0]);
        Chunk("IDAT", [0x78, 0x9C, 0x03, 0x00]);
        Chunk("IEND", []);
        var e = Assert.Throws<ImageDecodeException>(() => ImageFile.Decode("bomb.png", [.. png], 3));
        Assert.Contains("30000 x 30000", e.Message);
        Assert.Contains("bomb.png", e.Message);
    }

    [Fact]
    public void Decode_RefusesFormatsTheCliDoesNotDocument()
    {
        // GIF89a 1x1: StbImageSharp decodes it, the CLI documents PNG, JPEG and BMP only.
        byte[] gif = [.. "GIF89a"u8, 1, 0, 1, 0, 0, 0, 0, 0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3B];
        Assert.Contains("signature", Assert.Throws<ImageDecodeException>(() => ImageFile.Decode("a.gif", gif, 1)).Message);
    }
}
