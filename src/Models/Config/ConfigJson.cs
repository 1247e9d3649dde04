using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuAnomaly.Models.Config;

/// <summary>
/// Typed reads of a model config (the JSON in a model file's <c>__metadata__</c>): every value's JSON kind is checked
/// before it is read, so a wrong or missing value is a <see cref="FormatException"/> naming the key, never a
/// NullReference, InvalidOperation or Argument exception from a cast (which the parsers would have to catch wholesale,
/// hiding their own bugs). A missing key and a JSON null are the same to the optional reads.
/// </summary>
public static class ConfigJson
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The config's root object. Throws <see cref="FormatException"/> for text that is not one JSON object with
    /// distinct keys (a metadata string may hold lone UTF-16 surrogates, which no UTF-8 JSON can), or
    /// <see cref="JsonException"/> for malformed JSON.
    /// </summary>
    public static JsonObject ParseObject(string json)
    {
        byte[] utf8;
        try { utf8 = StrictUtf8.GetBytes(json); }
        catch (EncoderFallbackException) { throw new FormatException("config holds an unpaired UTF-16 surrogate"); }
        var options = new JsonDocumentOptions { AllowDuplicateProperties = false };
        if (UnpairedEscapedSurrogate(utf8, options) is { } at) throw new FormatException($"config string at byte {at} escapes an unpaired UTF-16 surrogate");
        var node = JsonNode.Parse(utf8, documentOptions: options);
        return node as JsonObject ?? throw new FormatException($"config is a JSON {Kind(node)}, not an object");
    }

    /// <summary>
    /// The byte offset of the first string or key whose escapes hold an unpaired surrogate ("\ud800"), or null.
    /// System.Text.Json accepts those when parsing and throws InvalidOperationException only when the string is read
    /// (or compared, for duplicate keys): found by fuzzing, so they are refused before, explicitly.
    /// </summary>
    private static long? UnpairedEscapedSurrogate(byte[] utf8, JsonDocumentOptions options)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = options.MaxDepth, CommentHandling = options.CommentHandling });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            var v = reader.ValueSpan; // one contiguous buffer: never a ValueSequence
            bool pendingHigh = false;
            for (int i = 0; i < v.Length; i++)
            {
                bool escapedU = v[i] == '\\' && i + 5 < v.Length && v[i + 1] == 'u';
                int unit = escapedU ? Convert.ToInt32(System.Text.Encoding.ASCII.GetString(v.Slice(i + 2, 4)), 16) : -1;
                bool high = unit is >= 0xD800 and <= 0xDBFF, low = unit is >= 0xDC00 and <= 0xDFFF;
                if (pendingHigh != low) return reader.TokenStartIndex; // a high without its low, or a low alone
                pendingHigh = high;
                if (escapedU) i += 5;
                else if (v[i] == '\\') i++; // a two-byte escape: skip the escaped character
            }
            if (pendingHigh) return reader.TokenStartIndex;
        }
        return null;
    }

    public static JsonObject Object(JsonNode? node, string what) =>
        node as JsonObject ?? throw new FormatException($"{what} is {Describe(node)}, not an object");

    public static JsonObject? OptionalObject(JsonObject o, string key) => o[key] is null ? null : Object(o[key], key);

    public static JsonArray Array(JsonObject o, string key) =>
        o[key] as JsonArray ?? throw new FormatException($"{key} is {Describe(o[key])}, not an array");

    public static JsonArray? OptionalArray(JsonObject o, string key) => o[key] is null ? null : Array(o, key);

    public static int Int(JsonObject o, string key) => Int(o[key], key);

    public static int? OptionalInt(JsonObject o, string key) => o[key] is null ? null : Int(o[key], key);

    public static int Int(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i)
            ? i
            : throw new FormatException($"{what} is {Describe(node)}, not a 32-bit integer");

    public static int[] Ints(JsonArray a, string what) => [.. a.Select((n, i) => Int(n, $"{what}[{i}]"))];

    public static double Number(JsonObject o, string key) => Number(o[key], key);

    public static double? OptionalNumber(JsonObject o, string key) => o[key] is null ? null : Number(o[key], key);

    /// <summary>A finite double (a JSON number beyond double's range is refused, not read as infinity).</summary>
    public static double Number(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) && double.IsFinite(d)
            ? d
            : throw new FormatException($"{what} is {Describe(node)}, not a finite number");

    public static string String(JsonObject o, string key) => String(o[key], key);

    public static string String(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.TryGetValue(out string? s)
            ? s
            : throw new FormatException($"{what} is {Describe(node)}, not a string");

    public static string? OptionalString(JsonObject o, string key) => o[key] is null ? null : String(o[key], key);

    public static bool? OptionalBool(JsonObject o, string key) =>
        o[key] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() is JsonValueKind.True => true,
            JsonValue v when v.GetValueKind() is JsonValueKind.False => false,
            var n => throw new FormatException($"{key} is {Describe(n)}, not true or false"),
        };

    private static string Describe(JsonNode? node)
    {
        if (node is null) return "missing";
        string raw = node.ToJsonString();
        return $"{(raw.Length > 40 ? raw[..40] + "..." : raw)} (a JSON {Kind(node)})";
    }

    private static string Kind(JsonNode? node) => node?.GetValueKind() switch
    {
        null or JsonValueKind.Null => "null",
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "value",
    };
}
