using GpuAnomaly.Models.Metrics;
using Xunit;

namespace GpuAnomaly.Tests.Metrics;

public class ConnectedComponentsTests
{
    private static bool[] Mask(params string[] rows) => string.Concat(rows).Select(c => c == '#').ToArray();

    [Fact]
    public void Diagonal_JoinsWith8_SplitsWith4()
    {
        var mask = Mask("#..", ".#.", "..#");
        var labels = new int[9];
        Assert.Equal(1, ConnectedComponents.Label(mask, 3, 3, labels));
        Assert.Equal([1, 0, 0, 0, 1, 0, 0, 0, 1], labels);
        Assert.Equal(3, ConnectedComponents.Label(mask, 3, 3, labels, connectivity: 4));
        Assert.Equal([1, 0, 0, 0, 2, 0, 0, 0, 3], labels);
    }

    [Fact]
    public void SeveralRegions_RasterOrder_AndBoxes()
    {
        var mask = Mask(
            "##....#",
            ".#...##",
            "......#",
            "..#....",
            "..###..");
        var labels = new int[mask.Length];
        int count = ConnectedComponents.Label(mask, 7, 5, labels);
        Assert.Equal(3, count);
        Assert.Equal(1, labels[0]);          // (0, 0)
        Assert.Equal(2, labels[6]);          // (6, 0): first pixel of the right region in raster order
        Assert.Equal(3, labels[3 * 7 + 2]);  // (2, 3)
        Assert.Equal(0, labels[2]);
        var boxes = ConnectedComponents.BoundingBoxes(labels, 7, 5, count);
        Assert.Equal((0, 0, 1, 1), boxes[0]);
        Assert.Equal((5, 0, 6, 2), boxes[1]);
        Assert.Equal((2, 3, 4, 4), boxes[2]);
    }

    [Fact]
    public void EmptyAndFull_AndErrors()
    {
        var labels = new int[6];
        Assert.Equal(0, ConnectedComponents.Label(new bool[6], 3, 2, labels));
        Assert.Empty(ConnectedComponents.BoundingBoxes(labels, 3, 2, 0));
        Assert.Equal(1, ConnectedComponents.Label(Enumerable.Repeat(true, 6).ToArray(), 3, 2, labels));
        Assert.Equal((0, 0, 2, 1), ConnectedComponents.BoundingBoxes(labels, 3, 2, 1)[0]);
        Assert.Throws<ArgumentException>(() => ConnectedComponents.Label(new bool[5], 3, 2, labels));
        Assert.Throws<ArgumentException>(() => ConnectedComponents.Label(new bool[6], 3, 2, labels, connectivity: 6));
        Assert.Throws<ArgumentException>(() => ConnectedComponents.BoundingBoxes(labels, 3, 2, 2)); // component 2 empty
    }
}
