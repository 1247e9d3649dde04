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

    /// <summary>`--batch`: images per device batch, at least 1 (0 or a negative count is a usage error, not "1").</summary>
    public static Option<int> Batch(int defaultValue, string description = "Images per device batch")
    {
        var option = new Option<int>("--batch") { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r =>
        {
            int n = r.GetValueOrDefault<int>();
            if (n < 1) r.AddError($"--batch {n}: expected a count of at least 1");
        });
        return option;
    }

    /// <summary>
    /// Rejects a token like `--frobnicate` that names no existing file or folder: without this, an argument that takes
    /// paths swallows a mistyped option as a path.
    /// </summary>
    public static Argument<T> NotAnOption<T>(this Argument<T> argument)
    {
        argument.Validators.Add(r =>
        {
            foreach (var token in r.Tokens)
                if (token.Value.StartsWith('-') && token.Value.Length > 1 && !File.Exists(token.Value) && !Directory.Exists(token.Value))
                    r.AddError($"unknown option '{token.Value}' (a path starting with '-' must exist; write ./{token.Value} for a file of that name)");
        });
        return argument;
    }
}
