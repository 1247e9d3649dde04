using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Knn;

// PLACEHOLDER (replaced by the Knn GPU work): signatures only.
public sealed class KnnGpu(Accelerator accelerator)
{
    public void RowNorms(int n, int d, ArrayView<float> rows, ArrayView<float> norms) => throw new NotImplementedException(accelerator.Name);
    public void Forward(in KnnParams p, ArrayView<float> queries, ArrayView<float> bank, ArrayView<float> bankNorms, ArrayView<float> distances, ArrayView<int> indices) => throw new NotImplementedException();
}
