using System.Text;

namespace GpuAnomaly.Engine.Weights;

/// <summary>
/// A safetensors file that cannot be trusted or read. The message is one line:
/// <c>{path}: tensor '{name}': {problem}</c>, or <c>{path}: {problem}</c> when no tensor is at fault.
/// </summary>
public sealed class SafetensorsException : GpuAnomalyException
{
    public SafetensorsException(string path, string? tensorName, string problem, Exception? inner = null)
        : base(Format(path, tensorName, problem), inner!)
    {
        Path = path;
        TensorName = tensorName;
        Problem = problem;
    }

    public string Path { get; }
    public string? TensorName { get; }
    public string Problem { get; }

    private static string Format(string path, string? tensorName, string problem) =>
        tensorName is null
            ? $"{OneLine(path)}: {OneLine(problem)}"
            : $"{OneLine(path)}: tensor '{Printable(tensorName)}': {OneLine(problem)}";

    /// <summary>
    /// A name or JSON fragment from the file, made safe to print on one line: control characters
    /// escaped, long text cut (a hostile header can hold a megabyte-long tensor name).
    /// </summary>
    internal static string Printable(string text, int maxChars = 160)
    {
        var sb = new StringBuilder(Math.Min(text.Length, maxChars) + 8);
        foreach (char c in text)
        {
            if (sb.Length >= maxChars) return sb.Append("...").ToString();
            if (char.IsControl(c)) sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static string OneLine(string s) => s.Replace('\r', ' ').Replace('\n', ' ');
}
