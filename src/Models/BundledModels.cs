namespace GpuAnomaly.Models;

/// <summary>
/// The models that ship with GpuAnomaly (src/Models/Default/), copied beside the binaries into <c>models/</c>: by this
/// project's build, by the GpuAnomaly.Models package's content files into a consumer's output, and into the
/// gpuanomaly tool. <see cref="DefaultPath"/> is what <c>gpuanomaly predict</c> runs when no --model is given.
/// </summary>
public static class BundledModels
{
    /// <summary>The PatchCore-style memory bank (Fashion-MNIST Trouser as normal), the default anomaly model.</summary>
    public const string MemoryBankDefault = "memory_bank_default.safetensors";
    /// <summary>The Uninformed Students model (Trouser as normal); its teacher gives `teacher:SCALE` memory-bank features.</summary>
    public const string UninformedStudentsDefault = "uninformed_students_default.safetensors";
    /// <summary>The window-attention Fashion-MNIST classifier that `fit-ood` starts from.</summary>
    public const string WindowVitFashionMnist = "window_vit_fmnist.safetensors";

    /// <summary>The folder the bundled models are copied to: <c>models/</c> under <see cref="AppContext.BaseDirectory"/>.</summary>
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "models");

    /// <summary>Where a bundled model file is expected, whether or not it is there.</summary>
    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    /// <summary>The default anomaly model (<see cref="MemoryBankDefault"/>); throws <see cref="BundledModelNotFoundException"/> when it is missing.</summary>
    public static string DefaultPath => Resolve(MemoryBankDefault);

    /// <summary>The path of a bundled model file; throws <see cref="BundledModelNotFoundException"/> when it is missing.</summary>
    public static string Resolve(string fileName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(fileName);
        string path = PathOf(fileName);
        return File.Exists(path) ? path : throw new BundledModelNotFoundException(path);
    }
}

/// <summary>A bundled model file is not in the output's <c>models/</c> folder.</summary>
public sealed class BundledModelNotFoundException(string path)
    : FileNotFoundException(
        $"bundled model '{Path.GetFileName(path)}' not found at {path}: reference the GpuAnomaly.Models package (its content files " +
        "are copied to the output's models/ folder) or pass the path of a model file", path);
