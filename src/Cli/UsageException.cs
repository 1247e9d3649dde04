using GpuAnomaly.Engine;

namespace GpuAnomaly.Cli;

/// <summary>A bad option value or combination: reported in one line, exit 2.</summary>
public sealed class UsageException(string message) : GpuAnomalyException(message);
