using System.CommandLine;

namespace GpuAnomaly.Cli.Commands;

internal static class CommonOptions
{
    public static Option<string> Device()
    {
        var option = new Option<string>("--device", "-d")
        {
            Description = "Where to run: auto (cuda if a GPU is present, else cpu), cpu, cuda or ilgpu-cpu (ILGPU's CPU emulator, slow; for tests)",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong(Engine.Device.Names);
        return option;
    }
}
