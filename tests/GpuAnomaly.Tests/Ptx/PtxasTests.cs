using Xunit;

namespace GpuAnomaly.Tests.Ptx;

/// <summary>
/// Every ILGPU kernel of the engine, compiled to PTX as the CUDA accelerator would, then assembled by
/// ptxas for the A100 (sm_80, what ILGPU targets) and the H100 (sm_90, what the lent device is): ptxas
/// must accept it, and no kernel may use local memory: no spilled registers and no stack frame, either of
/// which turns a kernel's hot loop into memory traffic (the A8 kernels had a 128-256 byte frame from
/// CudaAsm.Emit's output variables until <see cref="GpuAnomaly.Kernels.Ternary.Dp4aIntrinsic"/>). Skipped, with the reason, where there is no ptxas.
/// GPUANOMALY_PTXAS_REPORT=FILE appends one line per kernel and architecture (registers, shared
/// memory, stack, spills): docs/perf/ptxas_resources.txt was made that way. GPUANOMALY_PTX_DUMP=DIR
/// writes each kernel's PTX there, for tools/ptx/sass_loops.py (ptxas, then nvdisasm).
/// </summary>
public sealed class PtxasTests : IDisposable
{
    private readonly PtxKernels _ptx = new();

    public void Dispose() => _ptx.Dispose();

    public static TheoryData<string> Kernels() => PtxKernels.Names();

    [PtxasTheory]
    [MemberData(nameof(Kernels))]
    public void Ptxas_accepts_the_kernel_and_it_uses_no_local_memory(string name)
    {
        string ptx = _ptx.Compile(PtxKernels.Named(name));
        string? dump = Environment.GetEnvironmentVariable("GPUANOMALY_PTX_DUMP");
        if (!string.IsNullOrEmpty(dump))
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, new string(name.TakeWhile(c => c != '(').ToArray()) + ".ptx"), ptx);
        }
        foreach (string arch in new[] { "sm_80", "sm_90" })
        {
            var u = Ptxas.Assemble(ptx, arch);
            Assert.True(u.ExitCode == 0, $"{name}: ptxas -arch={arch} exited {u.ExitCode}\n{u.Log}");
            // A report without these numbers means ptxas changed its -v format: the spill check would be vacuous.
            Assert.True(u.Registers > 0 && u.SpillStoreBytes >= 0 && u.SpillLoadBytes >= 0 && u.StackBytes >= 0, $"{name}: unparsed ptxas -v report\n{u.Log}");
            string? report = Environment.GetEnvironmentVariable("GPUANOMALY_PTXAS_REPORT");
            if (!string.IsNullOrEmpty(report))
                lock (typeof(PtxasTests))
                    File.AppendAllText(report, $"{arch}\t{name}\tregisters {u.Registers}\tsmem {Math.Max(u.SharedBytes, 0)}\tstack {Math.Max(u.StackBytes, 0)}\tspill stores {u.SpillStoreBytes}\tspill loads {u.SpillLoadBytes}\n");
            Assert.True(u.SpillStoreBytes == 0 && u.SpillLoadBytes == 0 && u.StackBytes == 0,
                $"{name}: ptxas -arch={arch}: {u.StackBytes} byte stack frame, spills {u.SpillStoreBytes} bytes stored, {u.SpillLoadBytes} loaded\n{u.Log}");
        }
    }
}
