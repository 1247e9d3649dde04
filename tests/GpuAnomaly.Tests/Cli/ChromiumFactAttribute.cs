using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>
/// A fact that needs a headless browser (Debian's chromium at /usr/bin/chromium, or GPUANOMALY_CHROMIUM). Skipped with
/// the reason where there is none, unless CI_REQUIRE_CHROMIUM=1: CI installs it, so there a missing browser is a
/// failure, not a silent skip.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public static string? Path =>
        Environment.GetEnvironmentVariable("GPUANOMALY_CHROMIUM") is { Length: > 0 } p && File.Exists(p) ? p
        : File.Exists("/usr/bin/chromium") ? "/usr/bin/chromium" : null;

    public static bool Required => Environment.GetEnvironmentVariable("CI_REQUIRE_CHROMIUM") == "1";

    public ChromiumFactAttribute()
    {
        if (Path is null && !Required) Skip = "no chromium at /usr/bin/chromium (apt-get install -y chromium) nor GPUANOMALY_CHROMIUM; set CI_REQUIRE_CHROMIUM=1 to fail instead";
    }
}
