using System.CommandLine;
using GpuAnomaly.Cli.Commands;
using GpuAnomaly.Engine;

namespace GpuAnomaly.Cli;

/// <summary>The `gpuanomaly` command tree. Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.</summary>
public static class GpuAnomalyCli
{
    public const int ExitOk = 0;
    public const int ExitCheckFailed = 1;
    public const int ExitBadInput = 2;
    public const int ExitInternalError = 70;

    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var output = new CliOutput(stdout ?? Console.Out, stderr ?? Console.Error);
        var root = new RootCommand("GpuAnomaly: anomaly and out-of-distribution detection on hand-written ILGPU kernels.");
        root.Subcommands.Add(PredictCommand.Create(output));
        root.Subcommands.Add(EvalCommand.Create(output));
        root.Subcommands.Add(FitCommand.Create(output));
        root.Subcommands.Add(DemoCommand.Create(output));
        root.Subcommands.Add(InfoCommand.Create(output));
        root.Subcommands.Add(InspectCommand.Create(output));
        root.Subcommands.Add(QuantizeCommand.Create(output));
        root.Subcommands.Add(OodCommands.FitOod(output));
        root.Subcommands.Add(OodCommands.Ood(output));
        root.Subcommands.Add(OodCommands.EvalOod(output));
        root.Subcommands.Add(BenchCommand.Create(output));
        root.Subcommands.Add(CheckCommand.Create(output));
        root.Subcommands.Add(RunCommand.Create(output));
        root.Subcommands.Add(OnnxTestCommand.Create(output));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) output.Error.WriteLine($"error: {e.Message}");
            output.Error.WriteLine("Run 'gpuanomaly --help' for usage.");
            return ExitBadInput;
        }
        var config = new InvocationConfiguration { Output = output.Out, Error = output.Error, EnableDefaultExceptionHandler = false };
        try
        {
            return parsed.Invoke(config);
        }
        catch (GpuAnomalyException e)
        {
            output.Error.WriteLine($"error: {OneLine(e.Message)}");
            return ExitBadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.Error.WriteLine($"error: {OneLine(e.Message)}");
            return ExitBadInput;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("GPUANOMALY_DEBUG") is null)
        {
            output.Error.WriteLine($"internal error: {e.GetType().Name}: {OneLine(e.Message)} (set GPUANOMALY_DEBUG=1 for the stack trace)");
            return ExitInternalError;
        }
    }

    public static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Where commands write: the console, or writers a test supplies.</summary>
public sealed record CliOutput(TextWriter Out, TextWriter Error);
