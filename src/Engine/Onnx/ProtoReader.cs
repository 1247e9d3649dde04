using System.Buffers.Binary;
using Google.Protobuf;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// One protobuf message of an ONNX file: the wire layer under <see cref="OnnxReader"/>, on Google.Protobuf's
/// <see cref="CodedInputStream"/> over a slice of the file's buffer. Every read of a known field checks the wire type
/// the ONNX schema gives it, and every protobuf error becomes an <see cref="OnnxFormatException"/> naming the message
/// (<see cref="Location"/>) and the field. Bytes fields and sub-messages are slices of the buffer, never copies, so a
/// raw_data of hundreds of MB is not duplicated.
/// </summary>
internal sealed class ProtoReader
{
    private readonly CodedInputStream _input;

    // No depth limit of its own: the reader recurses only through subgraphs, which OnnxModel.MaxSubgraphDepth bounds.
    public ProtoReader(string file, byte[] buffer, int offset, int length, string location)
    {
        File = file;
        Buffer = buffer;
        Offset = offset;
        Length = length;
        Location = location;
        _input = new CodedInputStream(buffer, offset, length);
    }

    public string File { get; }
    public byte[] Buffer { get; }
    public int Offset { get; }
    public int Length { get; }

    /// <summary>Where this message is, for errors; the reader appends the message's name once it has read it.</summary>
    public string Location { get; set; }

    /// <summary>The field number of the tag <see cref="Next"/> read.</summary>
    public int Field { get; private set; }

    public WireFormat.WireType WireType { get; private set; }

    public OnnxFormatException Error(string problem, Exception? inner = null) => new(File, Location, problem, inner);

    /// <summary>Reads the next tag; false at the end of the message.</summary>
    public bool Next()
    {
        uint tag = Guard("a field tag", () => _input.ReadTag());
        if (tag == 0) return false;
        Field = WireFormat.GetTagFieldNumber(tag);
        WireType = WireFormat.GetTagWireType(tag);
        // CodedInputStream skips wire types 6 and 7 silently; they exist in no protobuf.
        if ((int)WireType > 5) throw Error($"field {Field} has wire type {(int)WireType}, which protobuf does not define (the bytes are not a protobuf message)");
        return true;
    }

    /// <summary>Skips a field this reader does not know: later ONNX versions may add fields.</summary>
    public void Skip() => Guard($"field {Field}", () => { _input.SkipLastField(); return 0; });

    public long Int64(string name)
    {
        Expect(name, WireFormat.WireType.Varint);
        return Guard(Describe(name), _input.ReadInt64);
    }

    /// <summary>An int32 or enum field, refused when its varint does not fit 32 bits (CodedInputStream would cut it).</summary>
    public int Int32(string name)
    {
        long v = Int64(name);
        if (v is < int.MinValue or > int.MaxValue) throw Error($"{Describe(name)} is {v}, out of the int32 range");
        return (int)v;
    }

    public float Float(string name)
    {
        Expect(name, WireFormat.WireType.Fixed32);
        return Guard(Describe(name), _input.ReadFloat);
    }

    public string String(string name)
    {
        Expect(name, WireFormat.WireType.LengthDelimited);
        return Guard(Describe(name), _input.ReadString);
    }

    /// <summary>A bytes field as a slice of the file's buffer (no copy).</summary>
    public ReadOnlyMemory<byte> Bytes(string name)
    {
        var (start, length) = Delimited(name);
        return new ReadOnlyMemory<byte>(Buffer, start, length);
    }

    /// <summary>A sub-message, read by a reader of its own located at <paramref name="location"/>.</summary>
    public ProtoReader Message(string name, string location)
    {
        var (start, length) = Delimited(name);
        return new ProtoReader(File, Buffer, start, length, location);
    }

    /// <summary>A repeated varint field, packed (one length-delimited run) or not (one value per tag): protobuf parsers accept both.</summary>
    public void Int64s(string name, List<long> into)
    {
        if (WireType == WireFormat.WireType.Varint) { into.Add(Int64(name)); return; }
        var (start, length) = Delimited(name, packedOf: WireFormat.WireType.Varint);
        into.EnsureCapacity(into.Count + VarintCount(start, length));
        var run = new CodedInputStream(Buffer, start, length);
        try { while (!run.IsAtEnd) into.Add(run.ReadInt64()); }
        catch (InvalidProtocolBufferException e) { throw Error($"{Describe(name)}: {Explain(e)}", e); }
    }

    public void UInt64s(string name, List<ulong> into)
    {
        if (WireType == WireFormat.WireType.Varint) { Expect(name, WireFormat.WireType.Varint); into.Add(Guard(Describe(name), _input.ReadUInt64)); return; }
        var (start, length) = Delimited(name, packedOf: WireFormat.WireType.Varint);
        into.EnsureCapacity(into.Count + VarintCount(start, length));
        var run = new CodedInputStream(Buffer, start, length);
        try { while (!run.IsAtEnd) into.Add(run.ReadUInt64()); }
        catch (InvalidProtocolBufferException e) { throw Error($"{Describe(name)}: {Explain(e)}", e); }
    }

    public void Floats(string name, List<float> into)
    {
        if (WireType == WireFormat.WireType.Fixed32) { into.Add(Float(name)); return; }
        var (start, length) = Delimited(name, packedOf: WireFormat.WireType.Fixed32);
        if (length % 4 != 0) throw Error($"{Describe(name)}: a packed run of {length} bytes is not a whole number of 4-byte floats");
        var span = Buffer.AsSpan(start, length);
        into.EnsureCapacity(into.Count + length / 4);
        for (int i = 0; i < length; i += 4) into.Add(BinaryPrimitives.ReadSingleLittleEndian(span[i..]));
    }

    public void Doubles(string name, List<double> into)
    {
        if (WireType == WireFormat.WireType.Fixed64)
        {
            Expect(name, WireFormat.WireType.Fixed64);
            into.Add(Guard(Describe(name), _input.ReadDouble));
            return;
        }
        var (start, length) = Delimited(name, packedOf: WireFormat.WireType.Fixed64);
        if (length % 8 != 0) throw Error($"{Describe(name)}: a packed run of {length} bytes is not a whole number of 8-byte doubles");
        var span = Buffer.AsSpan(start, length);
        into.EnsureCapacity(into.Count + length / 8);
        for (int i = 0; i < length; i += 8) into.Add(BinaryPrimitives.ReadDoubleLittleEndian(span[i..]));
    }

    /// <summary>Values in a packed varint run: bytes without the continuation bit (an upper bound for a malformed run).</summary>
    private int VarintCount(int start, int length)
    {
        int n = 0;
        foreach (byte b in Buffer.AsSpan(start, length)) if (b < 0x80) n++;
        return n;
    }

    private string Describe(string name) => $"field {Field} ({name})";

    private void Expect(string name, WireFormat.WireType expected)
    {
        if (WireType != expected)
            throw Error($"{Describe(name)} has wire type {WireName(WireType)}, expected {WireName(expected)}");
    }

    /// <summary>
    /// The payload of a length-delimited field as (start, length) in <see cref="Buffer"/>. CodedInputStream checks the
    /// length against the message's end while skipping; the payload starts after the length's varint.
    /// </summary>
    private (int Start, int Length) Delimited(string name, WireFormat.WireType? packedOf = null)
    {
        if (WireType != WireFormat.WireType.LengthDelimited)
            throw Error(packedOf is { } element
                ? $"{Describe(name)} has wire type {WireName(WireType)}, expected {WireName(element)} or a packed run (length-delimited)"
                : $"{Describe(name)} has wire type {WireName(WireType)}, expected {WireName(WireFormat.WireType.LengthDelimited)}");
        int before = checked((int)_input.Position);
        Guard(Describe(name), () => { _input.SkipLastField(); return 0; });
        int end = checked((int)_input.Position);
        int start = before;
        while ((Buffer[start] & 0x80) != 0) start++;
        start++;
        return (start, end - start);
    }

    private T Guard<T>(string what, Func<T> read)
    {
        try { return read(); }
        catch (InvalidProtocolBufferException e) { throw Error($"{what}: {Explain(e)}", e); }
    }

    /// <summary>Protobuf's messages, said in a line: the library's text is long and speaks of its own API.</summary>
    private static string Explain(InvalidProtocolBufferException e) => e.Message switch
    {
        var m when m.Contains("ended unexpectedly") => "the message ends in the middle of a field: the file is truncated or a length in it is wrong",
        var m when m.Contains("malformed varint") => "malformed varint (more than 10 bytes)",
        var m when m.Contains("negative size") => "a length is negative",
        var m when m.Contains("invalid tag") => "invalid tag (field number 0)",
        var m when m.Contains("too many levels of nesting") => "groups nested deeper than protobuf's limit of 100",
        var m when m.Contains("invalid UTF-8") => "a string is not valid UTF-8",
        var m when m.Contains("end-group") || m.Contains("Mismatched end-group") => "a group (wire types 3 and 4) does not match its end",
        var m => m,
    };

    private static string WireName(WireFormat.WireType t) => t switch
    {
        WireFormat.WireType.Varint => "0 (varint)",
        WireFormat.WireType.Fixed64 => "1 (fixed 64-bit)",
        WireFormat.WireType.LengthDelimited => "2 (length-delimited)",
        WireFormat.WireType.StartGroup => "3 (start group)",
        WireFormat.WireType.EndGroup => "4 (end group)",
        WireFormat.WireType.Fixed32 => "5 (fixed 32-bit)",
        _ => ((int)t).ToString(),
    };
}
