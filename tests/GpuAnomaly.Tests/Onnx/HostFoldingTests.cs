using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>The import-time host evaluator's index rules: broadcasting, Slice, Gather, Reshape.</summary>
public sealed class HostFoldingTests
{
    [Fact]
    public void CastToBFloat16AndFloat16_RoundToWhatTheTypeHolds()
    {
        // 0.4789254665 = 0x3EF5363A: bfloat16 keeps 0x3EF5 (ONNX 1.12 truncates), float16 rounds to nearest.
        Assert.Equal(0.478515625, HostTensor.Round(OnnxDataType.BFloat16, 0.4789254665374756));
        Assert.Equal(-0.478515625, HostTensor.Round(OnnxDataType.BFloat16, -0.4789254665374756));
        Assert.True(double.IsNaN(HostTensor.Round(OnnxDataType.BFloat16, double.NaN)));
        Assert.Equal((double)(Half)0.4789254665374756, HostTensor.Round(OnnxDataType.Float16, 0.4789254665374756));
        Assert.Equal(0.478515625f, NdMath.Unary(UnaryKind.ToBFloat16, 0.4789254665374756f, 0f, 0f));
        Assert.Equal((float)(Half)3.14159f, NdMath.Unary(UnaryKind.ToFloat16, 3.14159f, 0f, 0f));
        Assert.Equal(0.478515625f, NdMath.BFloat16Bits(0x3EF5));
    }

    [Fact]
    public void Broadcast_FollowsNumpy()
    {
        Assert.Equal([2, 3, 4], NdIndex.Broadcast([3, 1], [2, 1, 4])!);
        Assert.Equal([5], NdIndex.Broadcast([], [5])!);
        Assert.Null(NdIndex.Broadcast([3], [4]));
        var y = new double[6];
        NdLayout.Binary<double>(BinaryKind.Sub, [10, 20], [2, 1], [1, 2, 3], [3], y, [2, 3]);
        Assert.Equal([9.0, 8, 7, 19, 18, 17], y);
    }

    [Theory]
    // start, end, step on a dim of 10 -> the elements numpy's x[start:end:step] takes
    [InlineData(-3, 1000, 1, new[] { 7, 8, 9 })]
    [InlineData(-1000, 2, 1, new[] { 0, 1 })]
    [InlineData(8, 1, -3, new[] { 8, 5, 2 })]
    [InlineData(-1, -1000, -4, new[] { 9, 5, 1 })]
    [InlineData(1000, 7, -1, new[] { 9, 8 })]
    [InlineData(5, 5, 1, new int[0])]
    [InlineData(2, 9, 3, new[] { 2, 5, 8 })]
    public void Slice_NegativeOverRangeAndStepped(long start, long end, long step, int[] expected)
    {
        var (s, st, len) = OnnxImporter.SliceAxes(new Shape(4, 10), [start], [end], [-1], [step]);
        var op = new SliceOp(s, st, len);
        var x = Enumerable.Range(0, 40).Select(i => (double)i).ToArray();
        var y = op.Reference([x], [new Shape(4, 10)], out var shape);
        Assert.Equal(new Shape(4, expected.Length), shape);
        for (int r = 0; r < 4; r++)
            Assert.Equal(expected.Select(v => (double)(r * 10 + v)), y.Skip(r * expected.Length).Take(expected.Length));
    }

    [Fact]
    public void Slice_ZeroStep_IsRefused() =>
        Assert.Throws<ArgumentException>(() => OnnxImporter.SliceAxes(new Shape(4), [0], [4], [0], [0]));

    [Fact]
    public void Reshape_ZeroCopiesAndMinusOneInfers()
    {
        var x = new Shape(2, 3, 4);
        Assert.Equal(new Shape(2, 12), OnnxImporter.ReshapeTarget(x, [0, -1], allowZero: false));
        Assert.Equal(new Shape(2, 3, 2, 2), OnnxImporter.ReshapeTarget(x, [0, 0, -1, 2], allowZero: false));
        Assert.Equal(new Shape(0, 3), OnnxImporter.ReshapeTarget(new Shape(0, 3), [0, 3], allowZero: true));
        Assert.Throws<ArgumentException>(() => OnnxImporter.ReshapeTarget(x, [-1, -1], false));
        Assert.Throws<ArgumentException>(() => OnnxImporter.ReshapeTarget(x, [5, -1], false));
    }

    [Fact]
    public void Gather_NegativeIndices_CountFromTheEnd()
    {
        // Built as the importer does: indices made non-negative, then the op (Gather on axis 1 of a [2, 4]).
        long[] raw = [-1, 0, -4];
        var op = new GatherOp(1, raw.Select(i => i < 0 ? i + 4 : i).ToArray(), [3]);
        var y = op.Reference([[0, 1, 2, 3, 10, 11, 12, 13]], [new Shape(2, 4)], out var shape);
        Assert.Equal(new Shape(2, 3), shape);
        Assert.Equal([3.0, 0, 0, 13, 10, 10], y);
        Assert.Throws<ArgumentException>(() => new GatherOp(1, [4], [1]).InferShape([new Shape(2, 4)]));
    }

    [Fact]
    public void FoldedInt64_AreExactAndIntDivisionTruncates()
    {
        Assert.Equal(-2, HostTensor.Round(OnnxDataType.Int64, -7.0 / 3));
        Assert.Equal(1, HostTensor.Round(OnnxDataType.Bool, 5));
        Assert.Equal((double)(1L << 52) + 1, HostTensor.Round(OnnxDataType.Int64, (double)(1L << 52) + 1));
        // INT64_MAX as "to the end" survives the trip through double.
        Assert.Equal(4.6e18, new HostTensor(OnnxDataType.Int64, [1], [long.MaxValue]).Longs()[0], 1e3);
    }

    [Fact]
    public void Erf_DoubleMatchesKnownValues()
    {
        Assert.Equal(0.8427007929497149, NdMath.ErfDouble(1), 14);
        Assert.Equal(-0.9953222650189527, NdMath.ErfDouble(-2), 14);
        Assert.Equal(0.9999779095030014, NdMath.ErfDouble(3), 14);
        Assert.Equal(0.0, NdMath.ErfDouble(0));
    }
}
