namespace GpuAnomaly.Engine;

/// <summary>
/// Marks an object's runs as one at a time. Executors and models reuse planned buffers (the activation arena,
/// input and output tensors, query buffers) between runs, so two threads running one instance would overwrite each
/// other's data and return wrong numbers silently; this turns that into a <see cref="ConcurrentUseException"/>.
/// It costs one interlocked operation per run and never blocks: waiting would hide the misuse and serialize threads
/// the caller believed parallel. A nested entry from the thread already running is allowed (a model's Score calling
/// its own PatchScores).
/// </summary>
public sealed class ExclusiveRun(string what)
{
    private int _owner; // managed thread id of the running thread, 0 when idle

    /// <summary>What runs, for the error message ("memory_bank", "executor").</summary>
    public string What { get; } = what;

    /// <summary>Starts a run; dispose the result in a finally (a using) to end it.</summary>
    public Scope Enter()
    {
        int me = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _owner, me, 0);
        if (owner == 0) return new Scope(this);
        if (owner == me) return default;
        throw new ConcurrentUseException(What);
    }

    /// <summary>The run started by <see cref="Enter"/>; default (owning nothing) for a nested entry.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly ExclusiveRun? _run;
        internal Scope(ExclusiveRun run) => _run = run;
        public void Dispose()
        {
            if (_run is not null) Volatile.Write(ref _run._owner, 0);
        }
    }
}
