namespace GpuAnomaly.Models.Metrics;

/// <summary>
/// Connected-component labelling of a binary mask (row-major, width x height), used by AUPRO for the
/// ground-truth regions and to draw boxes around predicted mask regions. 8-connectivity by default, as
/// Anomalib (OpenCV connectedComponents / kornia) and the MVTec AD evaluation (scipy.ndimage.label with a
/// 3x3 structure) use it.
/// </summary>
public static class ConnectedComponents
{
    /// <summary>
    /// Writes 0 for background and 1..count for the components into <paramref name="labels"/>; components are
    /// numbered in raster order of their first (top-most, then left-most) pixel. Returns the count. O(w h).
    /// </summary>
    /// <param name="connectivity">8 (diagonal neighbours join) or 4.</param>
    public static int Label(ReadOnlySpan<bool> mask, int width, int height, Span<int> labels, int connectivity = 8)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"ConnectedComponents.Label: size {width}x{height} must be positive");
        long n = (long)width * height;
        if (mask.Length != n || labels.Length != n)
            throw new ArgumentException($"ConnectedComponents.Label: {width}x{height} needs {n} elements, mask has {mask.Length} and labels {labels.Length}");
        if (connectivity != 8 && connectivity != 4)
            throw new ArgumentException($"ConnectedComponents.Label: connectivity must be 4 or 8, got {connectivity}");

        labels.Clear();
        int count = 0;
        var stack = new Stack<int>();
        for (int seed = 0; seed < mask.Length; seed++)
        {
            if (!mask[seed] || labels[seed] != 0) continue;
            int id = ++count;
            labels[seed] = id;
            stack.Push(seed);
            // Flood fill with an explicit stack: recursion would overflow on large regions.
            while (stack.Count > 0)
            {
                int at = stack.Pop();
                int y = at / width, x = at - y * width;
                for (int dy = -1; dy <= 1; dy++)
                {
                    int ny = y + dy;
                    if (ny < 0 || ny >= height) continue;
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        if (connectivity == 4 && dx != 0 && dy != 0) continue;
                        int nx = x + dx;
                        if (nx < 0 || nx >= width) continue;
                        int q = ny * width + nx;
                        if (mask[q] && labels[q] == 0)
                        {
                            labels[q] = id;
                            stack.Push(q);
                        }
                    }
                }
            }
        }
        return count;
    }

    /// <summary>
    /// The bounding box of each component 1..count (index i holds component i + 1), as inclusive pixel
    /// coordinates (X0, Y0) top-left to (X1, Y1) bottom-right; a single pixel gives X0 == X1, Y0 == Y1.
    /// </summary>
    public static (int X0, int Y0, int X1, int Y1)[] BoundingBoxes(ReadOnlySpan<int> labels, int width, int height, int count)
    {
        if (width <= 0 || height <= 0 || labels.Length != (long)width * height)
            throw new ArgumentException($"ConnectedComponents.BoundingBoxes: {width}x{height} does not match {labels.Length} labels");
        if (count < 0)
            throw new ArgumentException($"ConnectedComponents.BoundingBoxes: count {count} is negative");
        var boxes = new (int X0, int Y0, int X1, int Y1)[count];
        for (int i = 0; i < count; i++) boxes[i] = (int.MaxValue, int.MaxValue, -1, -1);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int id = labels[y * width + x];
                if (id == 0) continue;
                if (id < 0 || id > count)
                    throw new ArgumentException($"ConnectedComponents.BoundingBoxes: label {id} at ({x}, {y}) is outside 0..{count}");
                ref var b = ref boxes[id - 1];
                b = (Math.Min(b.X0, x), Math.Min(b.Y0, y), Math.Max(b.X1, x), Math.Max(b.Y1, y));
            }
        for (int i = 0; i < count; i++)
            if (boxes[i].X1 < 0)
                throw new ArgumentException($"ConnectedComponents.BoundingBoxes: component {i + 1} has no pixels");
        return boxes;
    }
}
