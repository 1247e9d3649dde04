using System.Buffers.Binary;
using System.Text;

namespace GpuAnomaly.Tests.Weights;

/// <summary>
/// Malformed safetensors files, each with a fragment the reader's error message must contain.
/// Reusable: the CLI tests write each case to a file and check that `gpuanomaly inspect` fails cleanly.
/// </summary>
public static class MalformedSafetensors
{
    /// <summary>A valid file: F32 [2, 3] holding 24 bytes.</summary>
    public const string ValidHeader = """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}""";

    private const string AfterName = "\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";

    public static IEnumerable<(string Name, byte[] Bytes, string ExpectedFragment)> Cases
    {
        get
        {
            byte[] valid = File(ValidHeader, 24);
            int dataStart = valid.Length - 24;

            yield return ("empty", [], "file is empty");
            yield return ("five-bytes", [1, 2, 3, 4, 5], "shorter than the 8-byte header length");
            yield return ("seven-bytes", valid[..7], "shorter than the 8-byte header length");
            yield return ("truncated-in-header", valid[..(8 + 10)], "runs past the end of the file");
            yield return ("truncated-header-last-byte", valid[..(dataStart - 1)], "runs past the end of the file");
            yield return ("truncated-at-data-start", valid[..dataStart], "past the end of the data buffer");
            yield return ("truncated-in-data-1", valid[..(dataStart + 1)], "past the end of the data buffer");
            yield return ("truncated-in-data-13", valid[..(dataStart + 13)], "past the end of the data buffer");
            yield return ("truncated-last-byte", valid[..^1], "past the end of the data buffer");
            yield return ("header-length-2^63", WithLength(valid, 1UL << 63), "exceeds the limit of 100000000 bytes");
            yield return ("header-length-2^40", WithLength(valid, 1UL << 40), "exceeds the limit of 100000000 bytes");
            yield return ("header-length-max", WithLength(valid, ulong.MaxValue), "exceeds the limit of 100000000 bytes");
            yield return ("header-length-beyond-file", WithLength(valid, 1000), "header length 1000 runs past the end of the file");
            yield return ("header-length-zero", WithLength(valid, 0), "header is not valid JSON");
            yield return ("header-not-utf8", File(Encoding.UTF8.GetBytes("""{"a"""), [0xFF, 0xFE],
                Encoding.UTF8.GetBytes(AfterName), 24), "header is not valid UTF-8");
            yield return ("overlong-utf8", File(Encoding.UTF8.GetBytes("""{"a"""), [0xC0, 0xAF],
                Encoding.UTF8.GetBytes(AfterName), 24), "header is not valid UTF-8");
            yield return ("leading-space", File(" " + ValidHeader, 24), "header must begin with '{'");
            yield return ("bad-json", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}""", 24), "header is not valid JSON");
            yield return ("trailing-comma", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},}""", 24), "header is not valid JSON");
            yield return ("json-comment", File("""{/*x*/"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}""", 24), "header is not valid JSON");
            yield return ("json-array", File("""[{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}]""", 24), "header is a JSON array, not an object");
            yield return ("json-string", File("\"hello\"", 0), "header is a JSON string, not an object");
            yield return ("duplicate-tensor", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}""", 4), "duplicate tensor name");
            yield return ("duplicate-metadata", File("""{"__metadata__":{},"__metadata__":{},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 2), "duplicate key '__metadata__'");
            yield return ("ternary-short", File("""{"w":{"dtype":"T2","shape":[3,20],"data_offsets":[0,20]}}""", 20), "hold 20 bytes but T2 [3, 20] needs 24");
            yield return ("ternary-unpadded", File("""{"w":{"dtype":"T2","shape":[2,16],"data_offsets":[0,16]}}""", 16), "hold 16 bytes but T2 [2, 16] needs 8");
            yield return ("ternary-scalar", File("""{"w":{"dtype":"T2","shape":[],"data_offsets":[0,4]}}""", 4), "need at least one dimension");
            yield return ("duplicate-entry-key", File("""{"a":{"dtype":"U8","dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 2), "duplicate key 'dtype'");
            yield return ("entry-not-object", File("""{"a":5}""", 0), "tensor 'a': entry is a JSON number, not an object");
            yield return ("missing-dtype", File("""{"a":{"shape":[2,3],"data_offsets":[0,24]}}""", 24), "tensor 'a': missing 'dtype'");
            yield return ("missing-shape", File("""{"a":{"dtype":"F32","data_offsets":[0,24]}}""", 24), "tensor 'a': missing 'shape'");
            yield return ("missing-offsets", File("""{"a":{"dtype":"F32","shape":[2,3]}}""", 24), "tensor 'a': missing 'data_offsets'");
            yield return ("unexpected-key", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"offset":0}}""", 24), "unexpected key 'offset'");
            yield return ("unknown-dtype", File("""{"a":{"dtype":"F128","shape":[2,3],"data_offsets":[0,24]}}""", 24), "unknown dtype 'F128'");
            yield return ("dtype-lowercase", File("""{"a":{"dtype":"f32","shape":[2,3],"data_offsets":[0,24]}}""", 24), "unknown dtype 'f32'");
            yield return ("dtype-not-string", File("""{"a":{"dtype":4,"shape":[2,3],"data_offsets":[0,24]}}""", 24), "'dtype' is a JSON number, not a string");
            yield return ("shape-not-array", File("""{"a":{"dtype":"F32","shape":6,"data_offsets":[0,24]}}""", 24), "'shape' is a JSON number, not an array");
            yield return ("negative-dim", File("""{"a":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]}}""", 24), "shape dimension 0 is -2, a negative dimension");
            yield return ("non-integer-dim", File("""{"a":{"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]}}""", 24), "shape dimension 0 is 2.5, not an integer");
            yield return ("exponent-dim", File("""{"a":{"dtype":"F32","shape":[2,3e0],"data_offsets":[0,24]}}""", 24), "shape dimension 1 is 3e0, not an integer");
            yield return ("string-dim", File("""{"a":{"dtype":"F32","shape":["2",3],"data_offsets":[0,24]}}""", 24), "shape dimension 0 is a JSON string, not an integer");
            yield return ("huge-dim", File("""{"a":{"dtype":"U8","shape":[3000000000],"data_offsets":[0,24]}}""", 24), "larger than 2147483647");
            yield return ("size-mismatch", File("""{"a":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}}""", 100), "data_offsets [0, 100] hold 100 bytes but F32 [5, 6] needs 120");
            yield return ("size-mismatch-scalar", File("""{"a":{"dtype":"F64","shape":[],"data_offsets":[0,4]}}""", 4), "hold 4 bytes but F64 [] needs 8");
            yield return ("begin-after-end", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}""", 24), "data_offsets [24, 0] begin after they end");
            yield return ("offsets-not-pair", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12,24]}}""", 24), "not an array of two integers");
            yield return ("offsets-object", File("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":{"begin":0}}}""", 24), "not an array of two integers");
            yield return ("negative-offset", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[-2,0]}}""", 2), "data_offsets[0] is -2, a negative offset");
            yield return ("fractional-offset", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2.0]}}""", 2), "data_offsets[1] is 2.0, not an integer");
            yield return ("overlap", File("""{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[6],"data_offsets":[16,40]}}""", 40), "tensor 'b': data_offsets [16, 40] overlap tensor 'a'");
            yield return ("gap", File("""{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[6],"data_offsets":[28,52]}}""", 52), "leaving a gap of 4 bytes after tensor 'a'");
            yield return ("not-from-zero", File("""{"a":{"dtype":"F32","shape":[6],"data_offsets":[4,28]}}""", 28), "begins at byte 4 of the data buffer, not 0");
            yield return ("shape-overflow", File("""{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,0]}}""", 0), "overflows 64 bits");
            yield return ("shape-overflow-i8", File("""{"a":{"dtype":"I8","shape":[65536,65536,65536,65536,2],"data_offsets":[0,8]}}""", 8), "overflows 64 bits");
            yield return ("trailing-bytes", Concat(valid, [1, 2, 3]), "3 trailing bytes after the last tensor");
            yield return ("data-but-no-tensors", File("{}", 8), "8 trailing bytes after the last tensor");
            yield return ("metadata-not-object", File("""{"__metadata__":["x"],"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}""", 24), "'__metadata__' is a JSON array, not an object");
            yield return ("metadata-number-value", File("""{"__metadata__":{"arch":"student","layers":3},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}""", 24), "value of key 'layers' is a JSON number, not a string");
            yield return ("metadata-null-value", File("""{"__metadata__":{"k":null},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}""", 24), "value of key 'k' is a JSON null, not a string");
            yield return ("offsets-beyond-file", File("""{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"U8","shape":[976],"data_offsets":[24,1000]}}""", 24), "data_offsets[1] is 1000, past the end of the data buffer (24 bytes)");
            yield return ("offsets-beyond-2^64", File("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,99999999999999999999999]}}""", 2), "past the end of the data buffer");
        }
    }

    /// <summary>8-byte little-endian header length, the header, then <paramref name="dataBytes"/> bytes of data (non-zero).</summary>
    public static byte[] File(string header, int dataBytes) => File(Encoding.UTF8.GetBytes(header), [], [], dataBytes);

    private static byte[] File(byte[] a, byte[] b, byte[] c, int dataBytes)
    {
        var header = Concat(Concat(a, b), c);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + header.Length + i] = (byte)(i * 37 + 11);
        return bytes;
    }

    private static byte[] WithLength(byte[] file, ulong headerLength)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, headerLength);
        return copy;
    }

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];
}
