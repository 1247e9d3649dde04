using GpuAnomaly.Cli;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Tests.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`gpuanomaly run` (.npy in and out) and `gpuanomaly onnx-test` (ONNX backend-test folders).</summary>
public sealed class OnnxRunCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-onnx-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void NpyWrite_ThatFails_IsATypedError_AndLeavesNoFileBehind()
    {
        // The target is a directory: the move over it fails after the data is written to the temporary file.
        string target = Path.Combine(_dir, "taken.npy");
        Directory.CreateDirectory(target);
        var e = Assert.ThrowsAny<GpuAnomalyException>(() => NpyFile.Write(target, new HostTensor(OnnxDataType.Float, [2], [1.5, -2])));
        Assert.Contains("taken.npy", e.Message);
        Assert.Equal([target], Directory.GetFileSystemEntries(_dir));

        // An existing file is replaced whole.
        string file = Path.Combine(_dir, "y.npy");
        NpyFile.Write(file, new HostTensor(OnnxDataType.Float, [3], [1, 2, 3]));
        NpyFile.Write(file, new HostTensor(OnnxDataType.Float, [2], [4.5, 5]));
        Assert.Equal([4.5, 5], NpyFile.Read(file).Data);
        Assert.Equal(2, Directory.GetFileSystemEntries(_dir).Length);
    }

    [Fact]
    public void Run_WritesEachOutputAsNpy_InItsOnnxType()
    {
        string outDir = Path.Combine(_dir, "out");
        var (code, output, err) = Run("run", OnnxImporterTests.PathOf("cnn.onnx"), "--input", "x=" + OnnxImporterTests.PathOf("cnn.x.npy"),
            "--out", outDir, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("probs: FLOAT [2, 5]", output);
        var probs = NpyFile.Read(Path.Combine(outDir, "probs.npy"));
        Assert.Equal(OnnxDataType.Float, probs.Type);
        KernelLab.AssertClose(probs.Floats(), NpyFile.Read(OnnxImporterTests.PathOf("cnn.probs.npy")).Data, 1e-5, "probs.npy");

        // An int64 input given as .npy is bound at load; the int64 output comes back as int64.
        string x = Path.Combine(_dir, "x.npy"), idx = Path.Combine(_dir, "idx.npy");
        NpyFile.Write(x, new HostTensor(OnnxDataType.Float, [1, 5], [1, 2, 3, 4, 5]));
        NpyFile.Write(idx, HostTensor.Vector(OnnxDataType.Int64, [0, -1, 1]));
        (code, _, err) = Run("run", OnnxImporterTests.PathOf("int_input.onnx"), "--input", "x=" + x, "--input", "idx=" + idx, "--out", outDir);
        Assert.True(code == 0, err);
        var n = NpyFile.Read(Path.Combine(outDir, "n.npy"));
        Assert.Equal(OnnxDataType.Int64, n.Type);
        Assert.Equal([3.0], n.Data);
        Assert.Equal(new Shape(1, 3), NpyFile.Read(Path.Combine(outDir, "y.npy")).Shape);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "is not a .npy file")]
    [InlineData(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 0xFF, 0x7F }, "the header runs past the end")]
    public void Run_BadNpy_IsOneLineExit2(byte[] bytes, string problem)
    {
        string bad = Path.Combine(_dir, "bad.npy");
        File.WriteAllBytes(bad, bytes);
        var (code, _, err) = Run("run", OnnxImporterTests.PathOf("cnn.onnx"), "--input", "x=" + bad, "--out", _dir);
        Assert.Equal(2, code);
        Assert.Contains(problem, err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Npy_HostileHeaders_AreRefused()
    {
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        byte[] Npy(string h, int dataBytes)
        {
            var head = System.Text.Encoding.Latin1.GetBytes(h + "\n");
            return [0x93, .. "NUMPY"u8, 1, 0, (byte)head.Length, (byte)(head.Length >> 8), .. head, .. new byte[dataBytes]];
        }
        Assert.Equal(new Shape(2, 3), NpyFile.Parse(Npy(header, 24), "ok").Shape);
        Assert.Contains("needs 24", Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy(header, 20), "short")).Message);
        Assert.Contains("Fortran", Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy(header.Replace("False", "True"), 24), "f")).Message);
        Assert.Contains("dtype '>f4'", Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy(header.Replace("<f4", ">f4"), 24), "be")).Message);
        Assert.Contains("2^40", Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy(header.Replace("(2, 3)", "(2000000, 2000000, 2000000)"), 0), "big")).Message);
        Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy(header.Replace("(2, 3)", "(-2, 3)"), 0), "neg"));
        Assert.Throws<NpyFormatException>(() => NpyFile.Parse(Npy("{'descr': '<f4'}", 0), "partial"));
    }

    [Fact]
    public void Run_FileNames_AreSanitized()
    {
        Assert.Equal("a_b_c", GpuAnomaly.Cli.Commands.RunCommand.FileName("a/b\\c"));
        Assert.Equal("output", GpuAnomaly.Cli.Commands.RunCommand.FileName(".."));
        Assert.Equal("x_y", GpuAnomaly.Cli.Commands.RunCommand.FileName("x:y"));
    }

    [Fact]
    public void OnnxTest_OverNodeFolders_CountsPassFailUnsupported()
    {
        string node = OnnxImporterTests.PathOf("node");
        var (code, output, err) = Run("onnx-test", node, "--device", "cpu");
        Assert.True(code == 0, output + err);
        foreach (var t in new[] { "test_relu", "test_add_bcast", "test_slice_neg_steps", "test_gather_negative_indices", "test_conv_with_strides_padding",
                     "test_averagepool_2d_same_upper", "test_maxpool_2d_ceil" })
            Assert.Contains($"PASS {t}\n", output.ReplaceLineEndings("\n"));
        // ArgMax: an integer index at run time (it was the folder's unsupported op before ArgMax existed).
        Assert.Contains("PASS test_argmax_default_axis_example\n", output.ReplaceLineEndings("\n"));
        Assert.Contains("onnx-test: 8 passed, 0 failed, 0 unsupported", output);

        // A wrong expected output is a FAIL naming the output, and the exit code says so.
        string copy = Path.Combine(_dir, "test_relu");
        Directory.CreateDirectory(Path.Combine(copy, "test_data_set_0"));
        File.Copy(Path.Combine(node, "test_relu", "model.onnx"), Path.Combine(copy, "model.onnx"));
        File.Copy(Path.Combine(node, "test_relu", "test_data_set_0", "input_0.pb"), Path.Combine(copy, "test_data_set_0", "input_0.pb"));
        File.Copy(Path.Combine(node, "test_relu", "test_data_set_0", "input_0.pb"), Path.Combine(copy, "test_data_set_0", "output_0.pb"));
        (code, output, _) = Run("onnx-test", copy, "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Matches(@"FAIL test_relu: output 'y': \d+ of 60 elements differ", output);
        Assert.Contains("onnx-test: 0 passed, 1 failed, 0 unsupported", output);
    }
}
