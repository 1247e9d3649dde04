using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>A progress bar on the terminal for long work; nothing when stderr is redirected (pipes, tests, CI logs).</summary>
internal static class CliProgress
{
    public static T Run<T>(CliOutput output, string label, int total, Func<Action<int>, T> work)
    {
        if (total <= 1 || output.Error != Console.Error || Console.IsErrorRedirected) return work(_ => { });
        T result = default!;
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }).Progress()
            .Start(ctx => { var task = ctx.AddTask(label, maxValue: total); result = work(n => task.Increment(n)); });
        return result;
    }
}
