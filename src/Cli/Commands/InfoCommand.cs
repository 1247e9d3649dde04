using System.CommandLine;
using GpuAnomaly.Engine;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>`gpuanomaly info`: the devices this machine offers.</summary>
internal static class InfoCommand
{
    public static Command Create(CliOutput output)
    {
        var cmd = new Command("info", "List the devices (name, memory, multiprocessors, warp size) and the ILGPU version.");
        cmd.SetAction(_ =>
        {
            var table = new Table().AddColumns("device", "description", "memory", "multiprocessors", "warp size", "status");
            AddRow(table, "cpu", () => new CpuDevice());
            AddRow(table, "cuda", () => IlgpuDevice.OpenCuda());
            AddRow(table, "ilgpu-cpu", () => IlgpuDevice.OpenCpuEmulator());
            var console = Console(output.Out);
            console.Write(table);
            console.WriteLine($"ILGPU {IlgpuDevice.IlgpuVersion}, .NET {Environment.Version}; auto selects {(IlgpuDevice.CudaAvailable() ? "cuda" : "cpu")}.");
            return 0;
        });
        return cmd;
    }

    private static void AddRow(Table table, string name, Func<Device> open)
    {
        try
        {
            using var d = open();
            table.AddRow(Markup.Escape(name), Markup.Escape(d.Description), DeviceOutOfMemoryException.FormatBytes(d.MemoryBytes).Split(" (")[0],
                d.Multiprocessors.ToString(), d.WarpSize.ToString(), "available");
        }
        catch (DeviceUnavailableException e)
        {
            table.AddRow(Markup.Escape(name), "-", "-", "-", "-", Markup.Escape(e.Message));
        }
    }

    /// <summary>A Spectre console on <paramref name="writer"/>; redirected output gets plain text 160 columns wide.</summary>
    public static IAnsiConsole Console(TextWriter writer)
    {
        bool terminal = writer == System.Console.Out && !System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!terminal) console.Profile.Width = 160;
        return console;
    }
}
