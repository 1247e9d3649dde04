using System.CommandLine;

namespace GpuAnomaly.Cli;

/// <summary>The `gpuanomaly` command tree.</summary>
public static class GpuAnomalyCli
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("GpuAnomaly: anomaly and out-of-distribution detection on ILGPU kernels");
        return root.Parse(args).Invoke();
    }
}
