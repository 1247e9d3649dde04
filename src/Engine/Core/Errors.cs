namespace GpuAnomaly.Engine;

/// <summary>
/// Base of the errors a user can cause and fix (bad file, bad shapes, no memory): the CLI
/// prints their message on one line and exits non-zero, without a stack trace.
/// </summary>
public class GpuAnomalyException : Exception
{
    public GpuAnomalyException(string message) : base(message) { }
    public GpuAnomalyException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>An allocation did not fit on a device.</summary>
public sealed class DeviceOutOfMemoryException : GpuAnomalyException
{
    public DeviceOutOfMemoryException(string device, long bytes, string? what, Exception? inner = null)
        : base($"out of memory on {device}: could not allocate {FormatBytes(bytes)}" + (what is null ? "" : $" for {what}"), inner ?? new OutOfMemoryException())
    {
        Device = device;
        Bytes = bytes;
    }

    public string Device { get; }
    public long Bytes { get; }

    public static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.##} GiB ({bytes} bytes)",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.##} MiB ({bytes} bytes)",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):0.##} KiB ({bytes} bytes)",
        _ => $"{bytes} bytes",
    };
}

/// <summary>
/// A plan that needs more memory than its device allows, refused before anything is allocated: names the bytes,
/// the budget and the input shapes (the batch and image size are what a user can change).
/// </summary>
public sealed class PlanTooLargeException : GpuAnomalyException
{
    public PlanTooLargeException(string device, long bytes, long budget, string inputs, string budgetNote)
        : base($"the model needs {DeviceOutOfMemoryException.FormatBytes(bytes)} on {device} for inputs {inputs}, more than the " +
               $"{DeviceOutOfMemoryException.FormatBytes(budget)} allowed ({budgetNote}); use a smaller batch or input size")
    {
        Device = device;
        Bytes = bytes;
        Budget = budget;
    }

    public string Device { get; }
    public long Bytes { get; }
    public long Budget { get; }
}

/// <summary>
/// A model produced NaN or infinity for an input: finite weights can still overflow float32 (huge weights or
/// statistics). Raised instead of writing the value, since NaN is not valid JSON and poisons every metric.
/// </summary>
public sealed class NonFiniteOutputException(string what, string input, float value)
    : GpuAnomalyException($"{input}: the model's {what} is {value} (not finite): its weights or statistics overflow float32")
{
    public string Input { get; } = input;
}

/// <summary>A graph whose shapes do not fit together; names the node and the shapes.</summary>
public sealed class ShapeMismatchException : GpuAnomalyException
{
    public ShapeMismatchException(string node, string message) : base($"node '{node}': {message}") => Node = node;
    public string Node { get; }
}

/// <summary>No such device, or the device cannot be used here.</summary>
public sealed class DeviceUnavailableException : GpuAnomalyException
{
    public DeviceUnavailableException(string message) : base(message) { }
}

/// <summary>
/// A second thread called Run or Score on a model (or executor) that another thread is running: instances reuse their
/// buffers between runs, so they are not thread-safe. Raised instead of returning numbers mixed from two inputs.
/// </summary>
public sealed class ConcurrentUseException(string model)
    : GpuAnomalyException($"model {model} is already running on another thread: a model instance is not thread-safe; " +
                          "create one instance per thread (see docs/ROBUSTNESS.md)")
{
    public string Model { get; } = model;
}
