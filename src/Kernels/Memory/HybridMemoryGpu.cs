using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Memory;

// PLACEHOLDER (replaced by the hybrid memory GPU work): signatures only.
public sealed class HybridMemoryGpu(Accelerator accelerator)
{
    public void Score(in HybridMemoryScoreParams p, ArrayView<float> queries, ArrayView<float> memory, ArrayView<float> y, ArrayView<int> best) => throw new NotImplementedException(accelerator.Name);
    public void Update(in HybridMemoryUpdateParams p, ArrayView<float> memory, ArrayView<float> features, ArrayView<int> indices) => throw new NotImplementedException();
}
