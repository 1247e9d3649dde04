using System.Diagnostics;
using System.Security.Cryptography;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The models of tools/export/onnx_models_fixtures.py: the small ones committed in Fixtures/onnx_models, the torchvision
/// ones (47 MB and 275 MB of random weights) written at test time by Debian's python into a cache folder
/// (GPUANOMALY_ONNX_MODEL_CACHE, else the temp folder), one subfolder per version of the script so an edited script
/// regenerates them.
/// </summary>
public static class OnnxModelFixtures
{
    public static string CommittedDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx_models");

    public static string Python => Environment.GetEnvironmentVariable("GPUANOMALY_TORCH_PYTHON") is { Length: > 0 } p ? p : "/usr/bin/python3";

    public static string Script => Path.Combine(RepoRoot(), "tools", "export", "onnx_models_fixtures.py");

    private static readonly Lazy<string?> Missing = new(FindMissing);

    /// <summary>Why the torch-generated fixtures cannot be made here, or null when they can.</summary>
    public static string? WhyNoTorch => Missing.Value;

    private static readonly Dictionary<string, Lazy<string>> Generated = new();

    /// <summary>The folder that holds <paramref name="model"/>'s files: the committed one, or the cache after generating it.</summary>
    public static string DirOf(string model)
    {
        if (File.Exists(Path.Combine(CommittedDir, model + ".onnx"))) return CommittedDir;
        Lazy<string> dir;
        lock (Generated)
            if (!Generated.TryGetValue(model, out dir!))
                Generated[model] = dir = new Lazy<string>(() => Generate(model));
        return dir.Value;
    }

    public static string PathOf(string model, string suffix) => Path.Combine(DirOf(model), model + suffix);

    private static string Generate(string model)
    {
        if (WhyNoTorch is { } why) throw new InvalidOperationException($"cannot generate {model}: {why}");
        string script = Script;
        string version = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(script)))[..12];
        string root = Environment.GetEnvironmentVariable("GPUANOMALY_ONNX_MODEL_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Path.GetTempPath(), "gpuanomaly-onnx-models");
        string dir = Path.Combine(root, version);
        // Written into a folder of its own and moved over, the marker last: a run killed halfway, or another test
        // process generating the same model, never leaves a half-written file under the final name.
        string done = Path.Combine(dir, model + ".done");
        if (File.Exists(done)) return dir;
        string scratch = Directory.CreateDirectory(Path.Combine(dir, ".tmp-" + Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            var (code, output) = RunPython(script, "--out", scratch, model);
            if (code != 0) throw new InvalidOperationException($"{script} {model} failed (exit {code}):\n{output}");
            foreach (var f in Directory.GetFiles(scratch)) File.Move(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
            File.WriteAllText(done, output);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        return dir;
    }

    private static string? FindMissing()
    {
        if (!File.Exists(Python)) return $"no {Python} (Debian's python3 with python3-torch, python3-torchvision, python3-onnx; or GPUANOMALY_TORCH_PYTHON)";
        try
        {
            var (code, output) = RunPython("-c", "import torch, torchvision, onnx");
            return code == 0 ? null : $"{Python} cannot import torch, torchvision and onnx: {output.Trim().Split('\n')[^1]}";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return $"{Python} does not run: {e.Message}";
        }
    }

    private static (int Code, string Output) RunPython(params string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GpuAnomaly.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no GpuAnomaly.sln in {AppContext.BaseDirectory} or any folder above it");
    }
}

/// <summary>
/// A theory over models that Debian's python generates at test time (<see cref="OnnxModelFixtures"/>): skipped, with the
/// reason, where python with torch is missing.
/// </summary>
public sealed class TorchModelTheoryAttribute : TheoryAttribute
{
    public TorchModelTheoryAttribute()
    {
        if (OnnxModelFixtures.WhyNoTorch is { } why) Skip = why;
    }
}

/// <summary>
/// A theory too slow for every run (a large model on the ilgpu-cpu device's emulated threads): it runs only with
/// GPUANOMALY_SLOW_TESTS=1, and needs python with torch like <see cref="TorchModelTheoryAttribute"/>.
/// </summary>
public sealed class SlowTorchModelTheoryAttribute : TheoryAttribute
{
    public SlowTorchModelTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable("GPUANOMALY_SLOW_TESTS") != "1") Skip = "slow: set GPUANOMALY_SLOW_TESTS=1 to run it";
        else if (OnnxModelFixtures.WhyNoTorch is { } why) Skip = why;
    }
}
