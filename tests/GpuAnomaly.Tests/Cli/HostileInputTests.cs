using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine.Weights;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>
/// The breaks a new user found with hostile inputs (issue 15): each must end in one typed line and exit 2,
/// or behave correctly, never "internal error", a hang or an overwritten output.
/// They set process-wide environment variables (the cpu memory fraction), so they run alone, not beside other tests.
/// </summary>
[Collection(nameof(HostileInputTests))]
public sealed class HostileInputTests : IDisposable
{
    private static readonly string Model = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors");
    private readonly string _dir = Directory.CreateTempSubdirectory("hostile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // A hang is one of the breaks: a run that does not end in a minute fails instead of stalling the suite.
        var run = Task.Run(() => GpuAnomalyCli.Run(args, stdout, stderr));
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), $"gpuanomaly {string.Join(' ', args)} did not finish in 60 s");
        return (run.Result, stdout.ToString(), stderr.ToString());
    }

    private static void AssertOneLineError(int code, string err, params string[] fragments)
    {
        Assert.True(code == 2, $"exit {code}, stderr:\n{err}");
        // Warnings (an unfitted model, a skipped entry) may precede it; the error itself is one line.
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning: ")).ToArray();
        Assert.True(lines.Length == 1, $"expected one line, got:\n{err}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("internal error", err);
        Assert.DoesNotContain("   at ", err);
        foreach (var f in fragments) Assert.Contains(f, lines[0]);
    }

    /// <summary>Copies the fixture model with one tensor or the config edited.</summary>
    private string Rewrite(string name, Func<string, float[], float[]>? tensor = null, Action<JsonObject>? config = null)
    {
        string path = Path.Combine(_dir, name);
        using var src = SafetensorsFile.Open(Model);
        var tensors = src.Tensors.Select(e => new SafetensorsTensor(e.Name, [.. e.Shape],
            (tensor?.Invoke(e.Name, src.ReadFloat32(e.Name)) ?? src.ReadFloat32(e.Name)).AsMemory())).ToList();
        var meta = src.Metadata.ToDictionary();
        if (config is not null)
        {
            var node = JsonNode.Parse(meta["config"])!.AsObject();
            config(node);
            meta["config"] = node.ToJsonString();
        }
        SafetensorsWriter.Write(path, tensors, meta);
        return path;
    }

    private string Images(string folder, int count, int seed)
    {
        string dir = Path.Combine(_dir, folder);
        Directory.CreateDirectory(dir);
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var rgb = new byte[28 * 28 * 3];
            rng.NextBytes(rgb);
            ImageFile.WritePng(Path.Combine(dir, $"img{i}.png"), rgb, 28, 28);
        }
        return dir;
    }

    private static float[] With(float[] data, int at, float value)
    {
        data[at % data.Length] = value;
        return data;
    }

    [Theory]
    [InlineData("teacher.p33.layers.2.weight", float.NaN, "NaN")]
    [InlineData("teacher.p17.mu", float.PositiveInfinity, "Infinity")]
    [InlineData("students.0.p65.layers.0.bias", float.NegativeInfinity, "-Infinity")]
    public void NonFiniteWeight_IsRefusedAtLoad_NamingTheTensor(string tensor, float bad, string shown)
    {
        int at = Random.Shared.Next(1 << 20);
        string model = Rewrite("bad.safetensors", (n, d) => n == tensor ? With(d, at, bad) : d);
        string images = Images("in", 2, at);
        var (code, _, err) = Run("predict", images, "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        AssertOneLineError(code, err, $"'{tensor}'", shown, "must be finite", "bad.safetensors");
        Assert.False(Directory.Exists(Path.Combine(_dir, "out")) && Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "out")).Any(),
            "nothing is written for a model that does not load");
    }

    [Theory]
    [InlineData("e_std", 1e-40)]
    [InlineData("e_std", 1e39)]
    [InlineData("v_mean", double.NaN)]
    public void ValidationStatistic_OutOfRange_IsAConfigError(string key, double value)
    {
        string model = Rewrite("stats.safetensors", config: c =>
            c["validation"]!["33"]![key] = double.IsNaN(value) ? JsonValue.Create("NaN") : JsonValue.Create(value));
        var (code, _, err) = Run("predict", Images("in", 1, 3), "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        AssertOneLineError(code, err, key, "stats.safetensors");
    }

    [Theory]
    [InlineData("in_channels", -3)]
    [InlineData("in_channels", 0)]
    [InlineData("students", -1)]
    [InlineData("students", 100000)]
    public void NegativeOrAbsurdConfigCounts_AreConfigErrors(string key, int value)
    {
        string model = Rewrite("cfg.safetensors", config: c => c[key] = value);
        var (code, _, err) = Run("predict", Images("in", 1, 4), "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        AssertOneLineError(code, err, key, value.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void HugeInputSize_IsRefusedBeforeAllocating_NamingBytesAndShape()
    {
        // A 1% budget (about 240 MiB on a 24 GiB machine) makes the refusal independent of the machine's memory.
        string model = Rewrite("big.safetensors", config: c => c["input_size"] = new JsonArray(3000, 3000));
        long before = Environment.WorkingSet;
        Environment.SetEnvironmentVariable("GPUANOMALY_CPU_MEMORY_FRACTION", "0.01");
        (int code, string _, string err) = (0, "", "");
        try { (code, _, err) = Run("predict", Images("in", 1, 5), "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out")); }
        finally { Environment.SetEnvironmentVariable("GPUANOMALY_CPU_MEMORY_FRACTION", null); }
        AssertOneLineError(code, err, "3000", "more than the", "allowed", "GPUANOMALY_CPU_MEMORY_FRACTION");
        Assert.Matches(@"needs \d+(\.\d+)? (MiB|GiB|TiB)", err);
        // Refused from the plan, not after growing: the process did not take gigabytes on the way.
        Assert.True(Environment.WorkingSet - before < (1L << 30), $"working set grew by {(Environment.WorkingSet - before) >> 20} MiB");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    public void CpuLanes_IsValidated(string value)
    {
        Environment.SetEnvironmentVariable(GpuAnomaly.Engine.CpuDevice.LanesVariable, value);
        try
        {
            string outDir = Path.Combine(_dir, "out-lanes");
            var (code, _, err) = Run("predict", Images("in", 1, 6), "--model", Model, "--device", "cpu", "--out", outDir);
            AssertOneLineError(code, err, "GPUANOMALY_CPU_LANES", $"'{value}'");
            Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "nothing may be written");
        }
        finally { Environment.SetEnvironmentVariable(GpuAnomaly.Engine.CpuDevice.LanesVariable, null); }
    }

    [Fact]
    public void MemoryFraction_IsValidated()
    {
        Environment.SetEnvironmentVariable("GPUANOMALY_CPU_MEMORY_FRACTION", "1.5");
        try
        {
            var (code, _, err) = Run("predict", Images("in", 1, 6), "--model", Model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
            AssertOneLineError(code, err, "GPUANOMALY_CPU_MEMORY_FRACTION", "1.5");
        }
        finally { Environment.SetEnvironmentVariable("GPUANOMALY_CPU_MEMORY_FRACTION", null); }
    }

    [Fact]
    public void HugeFiniteWeights_OverflowingToNaN_AreReportedNotWritten()
    {
        // Finite weights pass the load check; 1e25 in two successive layers overflows float32 (1e50).
        string model = Rewrite("overflow.safetensors", (n, d) =>
            n is "teacher.p17.layers.0.weight" or "teacher.p17.layers.1.weight" ? [.. d.Select(v => v * 1e25f)] : d);
        var (code, stdout, err) = Run("predict", Images("in", 2, 7), "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        AssertOneLineError(code, err, "not finite", "overflow float32");
        Assert.DoesNotContain("NaN", stdout);
        Assert.DoesNotContain("Infinity", stdout);
    }

    [Fact]
    public void SymlinkLoop_InAFolder_IsSkippedNotFollowed()
    {
        string images = Images("in", 3, 8);
        string sub = Path.Combine(images, "sub");
        Directory.CreateDirectory(sub);
        Directory.CreateSymbolicLink(Path.Combine(sub, "loop"), images);      // in/sub/loop -> in
        Directory.CreateSymbolicLink(Path.Combine(sub, "self"), sub);         // in/sub/self -> in/sub
        File.CreateSymbolicLink(Path.Combine(images, "again.png"), Path.Combine(images, "img0.png"));
        var (code, stdout, err) = Run("predict", images, "--model", Model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        Assert.True(code == 0, $"exit {code}\n{err}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length); // each image once, whatever the links
        Assert.Contains("loop", err);
        Assert.DoesNotContain("internal error", err);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);

    [Fact]
    public void Fifo_AsAnImage_OrInAFolder_DoesNotHang()
    {
        string images = Images("in", 2, 9);
        string fifo = Path.Combine(images, "pipe.png");
        Assert.Equal(0, mkfifo(fifo, 0x1B6)); // 0666

        var (code, _, err) = Run("predict", fifo, "--model", Model, "--device", "cpu", "--out", Path.Combine(_dir, "out1"));
        Assert.True(code == 2, $"exit {code}\n{err}");
        Assert.Contains("pipe.png", err);
        Assert.Contains("not a regular file", err);

        var (code2, stdout2, err2) = Run("predict", images, "--model", Model, "--device", "cpu", "--out", Path.Combine(_dir, "out2"));
        Assert.Equal(2, stdout2.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("pipe.png", err2);
        Assert.DoesNotContain("internal error", err2);
        Assert.NotEqual(70, code2);
    }

    [Fact]
    public void SameFileName_InTwoFolders_GivesTwoHeatMaps_UnderTheirRelativePaths()
    {
        string a = Images(Path.Combine("set", "a"), 1, 10);
        string b = Images(Path.Combine("set", "b"), 1, 11);
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, err) = Run("predict", a, b, "--model", Model, "--device", "cpu", "--out", outDir);
        Assert.True(code == 0, $"exit {code}\n{err}");
        var maps = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("heatmap").GetString()!).ToList();
        Assert.Equal(2, maps.Distinct().Count());
        foreach (var m in maps)
        {
            Assert.True(File.Exists(m), m);
            Assert.StartsWith(Path.GetFullPath(outDir) + Path.DirectorySeparatorChar, Path.GetFullPath(m));
        }
        Assert.Contains(maps, m => m.Contains(Path.Combine("a", "img0")));
        Assert.Contains(maps, m => m.Contains(Path.Combine("b", "img0")));
        Assert.NotEqual(File.ReadAllBytes(maps[0]), File.ReadAllBytes(maps[1]));
    }

    [Fact]
    public void OutputNames_AreUnique_AndStayUnderOut()
    {
        string outDir = Path.Combine(_dir, "out");
        var inputs = new[] { "/data/x/a.png", "/data/y/a.png", "/data/x/a.jpg", "/data/x/a.png" };
        var names = OutputNames.Map(inputs.Distinct().ToList(), outDir, "_heatmap.png");
        Assert.Equal(3, names.Values.Distinct().Count());
        foreach (var n in names.Values) Assert.StartsWith(outDir + Path.DirectorySeparatorChar, n);
        var single = OutputNames.Map(["/only/one.png"], outDir, "_heatmap.png");
        Assert.Equal(Path.Combine(outDir, "one_heatmap.png"), single["/only/one.png"]);
    }

    [Theory]
    [InlineData("predict")]
    [InlineData("eval")]
    [InlineData("fit")]
    [InlineData("ood")]
    [InlineData("bench")]
    public void BatchZeroOrNegative_IsRejected(string command)
    {
        foreach (var batch in new[] { "0", "-1" })
        {
            string[] args = command switch
            {
                "predict" => ["predict", Images("in", 1, 12), "--model", Model, "--batch", batch],
                "eval" => ["eval", "--data", _dir, "--model", Model, "--batch", batch],
                "fit" => ["fit", "--data", _dir, "--out", Path.Combine(_dir, "m.safetensors"), "--batch", batch],
                "ood" => ["ood", Images("in", 1, 12), "--model", Model, "--batch", batch],
                _ => ["bench", "--model", Model, "--batch", batch],
            };
            var (code, stdout, err) = Run(args);
            Assert.True(code == 2, $"{command} --batch {batch}: exit {code}\n{err}");
            Assert.Contains($"--batch {batch}", err);
            Assert.Contains("at least 1", err);
            Assert.Equal("", stdout);
        }
    }

    [Theory]
    [InlineData("predict")]
    [InlineData("ood")]
    [InlineData("inspect")]
    public void UnknownOption_IsAnError_NotAPath(string command)
    {
        string[] args = command == "inspect" ? ["inspect", "--frobnicate"] : [command, "--frobnicate", "--model", Model];
        var (code, stdout, err) = Run(args);
        Assert.True(code == 2, $"exit {code}\n{err}");
        Assert.Contains("--frobnicate", err);
        Assert.Contains("unknown option", err);
        Assert.DoesNotContain("no such file", err);
        Assert.Equal("", stdout);
    }
}

/// <summary>Runs <see cref="HostileInputTests"/> alone: they change process-wide environment variables.</summary>
[CollectionDefinition(nameof(HostileInputTests), DisableParallelization = true)]
public sealed class HostileInputCollection;
