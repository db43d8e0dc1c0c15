using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heed.AI;

/// <summary>
/// Writes a GBNF grammar (llama.cpp's grammar format) whose sentences are exactly the JSON texts
/// valid for a JSON schema, so that constrained decoding can only produce valid output.
/// Covers what <c>AIFunctionFactory</c> and <c>ChatResponseFormat.ForJsonSchema</c> produce:
/// objects (required and optional properties, maps), strings (enum, const, min/maxLength, the
/// formats date, date-time and uuid), numbers, integers, booleans, null, arrays (min/maxItems),
/// nested objects, nullable types (<c>"type": [..., "null"]</c>) and <c>anyOf</c>.
/// Anything else (<c>$ref</c>, <c>pattern</c>, <c>minimum</c>, ...) is a <see cref="NotSupportedException"/>
/// naming the keyword: the output could not be guaranteed valid for it.
/// </summary>
/// <remarks>
/// Output is compact JSON with at most one space after ':' and ','. Strings and arrays without a
/// maxLength/maxItems are bounded by <see cref="JsonGrammarLimits"/> so that a small model cannot
/// write one string forever; the bounds never cut below a schema's own minimum.
/// </remarks>
public static class JsonSchemaGrammar
{
    /// <summary>The grammar of the JSON texts valid for <paramref name="schema"/>; its start rule is <c>root</c>.</summary>
    /// <param name="schema">A JSON schema (an object, or true for any JSON value).</param>
    /// <param name="limits">Bounds on unbounded strings and arrays; null for the defaults.</param>
    /// <exception cref="NotSupportedException">The schema uses a construct the grammar cannot enforce.</exception>
    public static string FromSchema(JsonElement schema, JsonGrammarLimits? limits = null)
    {
        var builder = new Builder(limits ?? new JsonGrammarLimits());
        return builder.Build(builder.Value(schema, "root-value", "#"));
    }

    /// <summary>The grammar of any JSON object (for <c>ChatResponseFormat.Json</c> without a schema).</summary>
    public static string AnyObject(JsonGrammarLimits? limits = null)
    {
        var builder = new Builder(limits ?? new JsonGrammarLimits());
        return builder.Build(builder.AnyObject());
    }

    /// <summary>A GBNF string literal matching <paramref name="text"/> exactly.</summary>
    internal static string Literal(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (Rune rune in text.EnumerateRunes())
        {
            switch (rune.Value)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case < 0x20: sb.Append("\\x").Append(rune.Value.ToString("X2", CultureInfo.InvariantCulture)); break;
                default: sb.Append(rune.ToString()); break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// Collects named rules while a schema is walked. Expressions are GBNF fragments; rules with the
    /// same body are written once.
    /// </summary>
    internal sealed class Builder(JsonGrammarLimits limits)
    {
        private static readonly HashSet<string> Unsupported =
        [
            "$ref", "$dynamicRef", "$recursiveRef", "allOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependentRequired",
            "dependencies", "prefixItems", "contains", "minContains", "maxContains", "uniqueItems", "unevaluatedItems", "unevaluatedProperties",
            "propertyNames", "patternProperties", "minProperties", "maxProperties", "pattern", "multipleOf", "minimum", "maximum",
            "exclusiveMinimum", "exclusiveMaximum",
        ];

        private static readonly Dictionary<string, JsonElement> NoKeywords = [];

        // Keywords whose meaning anyOf would have to be intersected with.
        private static readonly HashSet<string> Constraining =
            ["type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "format"];

        private readonly List<(string Name, string Body)> _rules = [];
        private readonly Dictionary<string, string> _nameOfBody = [];
        private string? _anyValue;
        private string? _anyObject;

        public const string Separator = "\",\" sp";

        public string Build(string rootExpression)
        {
            var sb = new StringBuilder();
            sb.Append("root ::= ").Append(rootExpression).Append('\n');
            foreach ((string name, string body) in _rules)
            {
                sb.Append(name).Append(" ::= ").Append(body).Append('\n');
            }
            sb.Append("sp ::= \" \"?\n");
            return sb.ToString();
        }

        /// <summary>A rule named after <paramref name="hint"/> with this body (or the existing rule with the same body).</summary>
        public string Rule(string hint, string body)
        {
            if (_nameOfBody.TryGetValue(body, out string? existing))
            {
                return existing;
            }
            string baseName = RuleName(hint);
            string name = baseName;
            for (int i = 2; _rules.Exists(r => r.Name == name) || name is "root" or "sp"; i++)
            {
                name = baseName + "-" + i.ToString(CultureInfo.InvariantCulture);
            }
            _rules.Add((name, body));
            _nameOfBody[body] = name;
            return name;
        }

        /// <summary>The rule for JSON values valid for <paramref name="schema"/>; <paramref name="path"/> names it in errors.</summary>
        public string Value(JsonElement schema, string hint, string path)
        {
            if (schema.ValueKind == JsonValueKind.True)
            {
                return AnyValue();
            }
            if (schema.ValueKind != JsonValueKind.Object)
            {
                throw new NotSupportedException($"The JSON schema at {path} is {schema.ValueKind}; only an object or true can be turned into a grammar.");
            }
            var keywords = new Dictionary<string, JsonElement>();
            foreach (JsonProperty property in schema.EnumerateObject())
            {
                keywords[property.Name] = property.Value;
            }
            RefuseUnsupported(keywords, path);
            string[] combined = ["enum", "const", "anyOf"];
            bool anyOfWithSiblings = keywords.ContainsKey("anyOf") && Constraining.Overlaps(keywords.Keys);
            if (combined.Count(keywords.ContainsKey) > 1 || anyOfWithSiblings)
            {
                throw new NotSupportedException(
                    $"The JSON schema at {path} combines {string.Join(", ", keywords.Keys.Where(k => combined.Contains(k) || Constraining.Contains(k)))}; " +
                    "Heed's grammar converter takes enum, const or anyOf alone.");
            }
            if (keywords.TryGetValue("enum", out JsonElement values))
            {
                if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                {
                    throw new NotSupportedException($"The JSON schema at {path} has an enum that is not a non-empty array.");
                }
                return Rule(hint, string.Join(" | ", values.EnumerateArray().Select(v => Literal(Compact(v)))));
            }
            if (keywords.TryGetValue("const", out JsonElement constant))
            {
                return Rule(hint, Literal(Compact(constant)));
            }
            if (keywords.TryGetValue("anyOf", out JsonElement anyOf))
            {
                if (anyOf.ValueKind != JsonValueKind.Array || anyOf.GetArrayLength() == 0)
                {
                    throw new NotSupportedException($"The JSON schema at {path} has an anyOf that is not a non-empty array.");
                }
                string[] options = anyOf.EnumerateArray().Select((s, i) => Value(s, $"{hint}-{i}", $"{path}/anyOf/{i}")).ToArray();
                return Rule(hint, string.Join(" | ", options));
            }
            if (!keywords.TryGetValue("type", out JsonElement type))
            {
                return AnyValue();
            }
            string[] types = type.ValueKind switch
            {
                JsonValueKind.String => [type.GetString()!],
                JsonValueKind.Array => type.EnumerateArray().Select(t => t.GetString() ?? "").ToArray(),
                _ => throw new NotSupportedException($"The JSON schema at {path} has a 'type' that is neither a name nor a list of names."),
            };
            string[] alternatives = types.Select(t => OfType(t, keywords, hint, path)).ToArray();
            return alternatives.Length == 1 ? alternatives[0] : Rule(hint, string.Join(" | ", alternatives));
        }

        private string OfType(string type, Dictionary<string, JsonElement> keywords, string hint, string path) => type switch
        {
            "string" => StringOf(keywords, hint, path),
            // At most 9 digits: the value fits the int an AIFunction parameter usually binds it to.
            "integer" => Rule("integer", "\"-\"? (\"0\" | [1-9] [0-9]{0,8})"),
            "number" => Rule("number", "\"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?"),
            "boolean" => Rule("boolean", "\"true\" | \"false\""),
            "null" => Rule("null", "\"null\""),
            "array" => ArrayOf(keywords, hint, path),
            "object" => ObjectOf(keywords, hint, path),
            _ => throw new NotSupportedException($"The JSON schema at {path} has the type '{type}', which is not a JSON Schema type."),
        };

        private string StringOf(Dictionary<string, JsonElement> keywords, string hint, string path)
        {
            if (keywords.TryGetValue("format", out JsonElement format))
            {
                return format.GetString() switch
                {
                    "date" => Date(),
                    "date-time" => Rule("date-time", $"\"\\\"\" {DateBody()} \"T\" {TimeBody()} \"\\\"\""),
                    "uuid" => Rule("uuid", "\"\\\"\" [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12} \"\\\"\""),
                    string other => throw new NotSupportedException($"The JSON schema at {path} has the string format '{other}'; supported formats are date, date-time and uuid."),
                    null => throw new NotSupportedException($"The JSON schema at {path} has a 'format' that is not a string."),
                };
            }
            int min = Count(keywords, "minLength", path) ?? 0;
            int max = Count(keywords, "maxLength", path) ?? Math.Max(min, limits.MaxStringLength);
            EnsureRange(min, max, "minLength", "maxLength", path);
            string character = Character();
            return Rule(min == 0 && max == limits.MaxStringLength ? "string" : hint,
                $"\"\\\"\" {character}{{{min},{max}}} \"\\\"\"");
        }

        /// <summary>A JSON string of any length (for free-text answers, bounded by the token budget instead).</summary>
        public string Text() => Rule("text", $"\"\\\"\" {Character()}* \"\\\"\"");

        // One character of a JSON string: anything but a quote, backslash or control, or an escape.
        private string Character() => Rule("char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})");

        private string Date() => Rule("date", $"\"\\\"\" {DateBody()} \"\\\"\"");

        private static string DateBody() => "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])";

        private static string TimeBody() =>
            "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,7})? (\"Z\" | [-+] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])";

        private string ArrayOf(Dictionary<string, JsonElement> keywords, string hint, string path)
        {
            string item = keywords.TryGetValue("items", out JsonElement items) ? Value(items, hint + "-item", path + "/items") : AnyValue();
            int min = Count(keywords, "minItems", path) ?? 0;
            int max = Count(keywords, "maxItems", path) ?? Math.Max(min, limits.MaxArrayItems);
            EnsureRange(min, max, "minItems", "maxItems", path);
            return Rule(hint, "\"[\" " + Repeated(item, min, max) + " \"]\"");
        }

        // min..max items separated by commas, as one expression.
        private static string Repeated(string item, int min, int max)
        {
            if (max == 0)
            {
                return "\"\"";
            }
            string rest = $"({Separator} {item}){{{Math.Max(min - 1, 0)},{max - 1}}}";
            return min == 0 ? $"({item} {rest})?" : $"{item} {rest}";
        }

        private string ObjectOf(Dictionary<string, JsonElement> keywords, string hint, string path)
        {
            var properties = new List<(string Name, JsonElement Schema)>();
            if (keywords.TryGetValue("properties", out JsonElement declared))
            {
                if (declared.ValueKind != JsonValueKind.Object)
                {
                    throw new NotSupportedException($"The JSON schema at {path} has 'properties' that is not an object.");
                }
                properties.AddRange(declared.EnumerateObject().Select(p => (p.Name, p.Value)));
            }
            var required = new HashSet<string>();
            if (keywords.TryGetValue("required", out JsonElement requiredList))
            {
                foreach (JsonElement name in requiredList.EnumerateArray())
                {
                    string n = name.GetString() ?? throw new NotSupportedException($"The JSON schema at {path} has a 'required' entry that is not a string.");
                    if (!properties.Exists(p => p.Name == n))
                    {
                        throw new NotSupportedException($"The JSON schema at {path} requires '{n}' but declares no such property; the grammar cannot know its type.");
                    }
                    required.Add(n);
                }
            }
            keywords.TryGetValue("additionalProperties", out JsonElement additional);
            if (properties.Count == 0)
            {
                // A map: any keys, each value valid for additionalProperties (or any value).
                if (additional.ValueKind == JsonValueKind.False)
                {
                    return Rule("empty-object", "\"{\" \"}\"");
                }
                string value = additional.ValueKind == JsonValueKind.Object ? Value(additional, hint + "-value", path + "/additionalProperties") : AnyValue();
                string entry = Rule(hint + "-entry", $"{StringOf(NoKeywords, "key", path)} \":\" sp {value}");
                return Rule(hint, $"\"{{\" ({entry} ({Separator} {entry})*)? \"}}\"");
            }
            // Declared properties only, in declared order, so additionalProperties never matters.
            string[] members = properties.Select(p => Rule($"{hint}-{p.Name}-kv",
                $"{Literal(Compact(p.Name))} \":\" sp {Value(p.Schema, $"{hint}-{p.Name}", $"{path}/properties/{p.Name}")}")).ToArray();
            bool[] isRequired = properties.Select(p => required.Contains(p.Name)).ToArray();
            // Members from index i on, written from the last back: required ones always, optional
            // ones or not, a comma before each but the first one written (afterFirst[i] says one was).
            string[] fromFirst = new string[members.Length + 1];
            string[] afterFirst = new string[members.Length + 1];
            fromFirst[members.Length] = afterFirst[members.Length] = "\"\"";
            for (int i = members.Length - 1; i >= 0; i--)
            {
                string first = $"{members[i]} {afterFirst[i + 1]}";
                string later = $"{Separator} {members[i]} {afterFirst[i + 1]}";
                fromFirst[i] = Rule($"{hint}-from{i}", isRequired[i] ? first : $"{first} | {fromFirst[i + 1]}");
                afterFirst[i] = Rule($"{hint}-then{i}", isRequired[i] ? later : $"{later} | {afterFirst[i + 1]}");
            }
            return Rule(hint, $"\"{{\" {fromFirst[0]} \"}}\"");
        }

        /// <summary>Any JSON value.</summary>
        public string AnyValue()
        {
            if (_anyValue is not null)
            {
                return _anyValue;
            }
            // Objects and arrays hold values: name the value rule before writing their bodies.
            _anyValue = Rule("value", "\"\"");
            string text = StringOf(NoKeywords, "string", "#");
            string member = $"{text} \":\" sp {_anyValue}";
            _anyObject = Rule("object", $"\"{{\" ({member} ({Separator} {member})*)? \"}}\"");
            string array = Rule("array", $"\"[\" ({_anyValue} ({Separator} {_anyValue})*)? \"]\"");
            string[] scalars = ["number", "boolean", "null"];
            string body = string.Join(" | ", new[] { _anyObject, array, text }.Concat(scalars.Select(t => OfType(t, NoKeywords, t, "#"))));
            int index = _rules.FindIndex(r => r.Name == _anyValue);
            _nameOfBody.Remove(_rules[index].Body);
            _rules[index] = (_anyValue, body);
            _nameOfBody[body] = _anyValue;
            return _anyValue;
        }

        /// <summary>Any JSON object.</summary>
        public string AnyObject()
        {
            AnyValue();
            return _anyObject!;
        }

        // Refuses the JSON Schema keywords that constrain values in ways the grammar does not
        // enforce. Other keywords are annotations to a validator (the spec ignores unknown ones,
        // such as Semantic Kernel's "condition"), and keywords of another type do not apply.
        private static void RefuseUnsupported(Dictionary<string, JsonElement> keywords, string path)
        {
            foreach (string keyword in keywords.Keys)
            {
                if (Unsupported.Contains(keyword))
                {
                    throw new NotSupportedException(
                        $"The JSON schema keyword '{keyword}' (at {path}) is not supported by Heed's grammar converter, so output could not be guaranteed valid for it. " +
                        "Supported: type, properties, required, additionalProperties, items, minItems, maxItems, enum, const, anyOf, minLength, maxLength, format (date, date-time, uuid).");
                }
            }
        }

        private static int? Count(Dictionary<string, JsonElement> keywords, string keyword, string path)
        {
            if (!keywords.TryGetValue(keyword, out JsonElement value))
            {
                return null;
            }
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int n) || n < 0)
            {
                throw new NotSupportedException($"The JSON schema at {path} has a '{keyword}' that is not a non-negative integer.");
            }
            return n;
        }

        private static void EnsureRange(int min, int max, string minName, string maxName, string path)
        {
            if (max < min)
            {
                throw new NotSupportedException($"The JSON schema at {path} has {maxName} {max} below {minName} {min}; no value is valid.");
            }
        }

        private static string RuleName(string hint)
        {
            var sb = new StringBuilder(hint.Length);
            foreach (char c in hint)
            {
                sb.Append(char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-');
            }
            return sb.ToString();
        }
    }

    /// <summary>Compact JSON text of a value.</summary>
    internal static string Compact(JsonElement value) => JsonSerializer.Serialize(value, JsonText.Default.JsonElement);

    private static string Compact(string text) => JsonSerializer.Serialize(text, JsonText.Default.String);
}

/// <summary>Bounds a JSON grammar puts on strings and arrays whose schema leaves them unbounded.</summary>
/// <param name="MaxStringLength">Most characters in a string without maxLength.</param>
/// <param name="MaxArrayItems">Most items in an array without maxItems.</param>
public sealed record JsonGrammarLimits(int MaxStringLength = 256, int MaxArrayItems = 32);

// Compact JSON text of a string or element, source-generated: Heed is trimmed and AOT-compatible.
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
internal sealed partial class JsonText : JsonSerializerContext;
