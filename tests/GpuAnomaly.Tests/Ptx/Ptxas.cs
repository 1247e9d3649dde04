using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace GpuAnomaly.Tests.Ptx;

/// <summary>
/// NVIDIA's PTX assembler, when this machine has one: GPUANOMALY_PTXAS names it, else `ptxas` on the PATH.
/// CI fetches it (.ci/fetch-ptxas); it needs no GPU. It turns the PTX that ILGPU emits into the SASS the
/// driver would load, so it finds what the PTX text alone cannot: operands ptxas rejects, and registers
/// spilled to local memory.
/// </summary>
public static class Ptxas
{
    public static string? Path { get; } = Find();

    private static string? Find()
    {
        string? named = Environment.GetEnvironmentVariable("GPUANOMALY_PTXAS");
        if (!string.IsNullOrEmpty(named)) return Executable(named) ? named : null;
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator))
        {
            string candidate = System.IO.Path.Combine(dir, "ptxas");
            if (dir.Length > 0 && Executable(candidate)) return candidate;
        }
        return null;
    }

    private static bool Executable(string path) =>
        File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0);

    public const string Missing = "no ptxas: set GPUANOMALY_PTXAS or put ptxas on the PATH (.ci/fetch-ptxas fetches one)";

    /// <summary>What ptxas -v reports for one kernel.</summary>
    public sealed record Usage(int ExitCode, string Log, int Registers, int SpillStoreBytes, int SpillLoadBytes, int StackBytes, int SharedBytes);

    /// <summary>Assembles <paramref name="ptx"/> for <paramref name="arch"/> (for example sm_90) with -v and parses its report.</summary>
    public static Usage Assemble(string ptx, string arch)
    {
        if (Path is null) throw new InvalidOperationException(Missing);
        string dir = Directory.CreateTempSubdirectory("gpuanomaly-ptxas-").FullName;
        try
        {
            string input = System.IO.Path.Combine(dir, "kernel.ptx");
            File.WriteAllText(input, ptx);
            var start = new ProcessStartInfo(Path)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string a in new[] { $"-arch={arch}", "-v", "-o", System.IO.Path.Combine(dir, "kernel.cubin"), input }) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            // Both pipes drain in the background, so a hung ptxas meets the time limit instead of a blocking read.
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"ptxas -arch={arch} ran over 120 s");
            }
            string log = stdout.Result + stderr.Result;
            return new Usage(p.ExitCode, log, Int(log, @"Used (\d+) registers"), Int(log, @"(\d+) bytes spill stores"),
                Int(log, @"(\d+) bytes spill loads"), Int(log, @"(\d+) bytes stack frame"), Int(log, @"(\d+) bytes smem"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The largest match of <paramref name="pattern"/>'s number in the log; -1 when absent.</summary>
    private static int Int(string log, string pattern)
    {
        var all = Regex.Matches(log, pattern).Select(m => int.Parse(m.Groups[1].Value)).ToList();
        return all.Count == 0 ? -1 : all.Max();
    }
}

/// <summary>A theory that is reported as skipped, with the reason, where no ptxas is found.</summary>
public sealed class PtxasTheoryAttribute : TheoryAttribute
{
    public PtxasTheoryAttribute()
    {
        if (Ptxas.Path is null) Skip = Ptxas.Missing;
    }
}
