namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// An ONNX file (a ModelProto, or a lone TensorProto) that cannot be trusted or read, or a value in it that is not
/// what the reader was asked for. The message is one line: <c>{file}: {location}: {problem}</c>, or
/// <c>{file}: {problem}</c> when no part of the file is at fault. The location is a path into the model, e.g.
/// <c>graph.node[12] 'conv1' attribute 'pads'</c>, <c>graph.initializer[3] 'fc.weight'</c>, or, inside a subgraph,
/// <c>graph.node[4] 'If_0' attribute 'then_branch'.node[0] 'Add_1'</c>.
/// </summary>
public sealed class OnnxFormatException : GpuAnomalyException
{
    public OnnxFormatException(string file, string? location, string problem, Exception? inner = null)
        : base(Format(file, location, problem), inner!)
    {
        File = file;
        Location = location;
        Problem = problem;
    }

    /// <summary>The file's path, or the display name given to <see cref="OnnxModel.Parse"/>.</summary>
    public string File { get; }

    /// <summary>Where in the file, as a path from the model's root; null when the whole file is at fault.</summary>
    public string? Location { get; }

    public string Problem { get; }

    private static string Format(string file, string? location, string problem) =>
        location is null ? $"{OneLine(file)}: {OneLine(problem)}" : $"{OneLine(file)}: {OneLine(location)}: {OneLine(problem)}";

    private static string OneLine(string s) => s.Replace('\r', ' ').Replace('\n', ' ');

    /// <summary>
    /// A name from the file, quoted and made safe to print on one line: a hostile file can hold control characters
    /// or a megabyte-long name (the safetensors reader's rule, <see cref="Weights.SafetensorsException.Printable"/>).
    /// </summary>
    internal static string Quote(string name) => $"'{Weights.SafetensorsException.Printable(name)}'";
}
