using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace Heed.AI;

/// <summary>
/// A model family's own way of being told about tools and of calling them, recognised from the
/// GGUF chat template: how tools, earlier calls and tool results are written into the prompt, the
/// grammar of a call, and how a finished call is read back. llama.cpp's template function renders
/// roles and text only, so a conversation with tools is rendered here, as the family's template
/// would render it. Models of no known family get <see cref="ReplyFormat"/>'s JSON envelope.
/// </summary>
internal abstract class ToolFormat
{
    /// <summary>The family's name, for logs and errors.</summary>
    public abstract string Name { get; }

    /// <summary>The character every call starts with; under Auto an answer is text that starts with any other.</summary>
    public abstract char CallStart { get; }

    /// <summary>
    /// The family whose tool format <paramref name="template"/> (a GGUF Jinja chat template) uses,
    /// or null for none. Looks for the markers that only that family's tool format writes.
    /// </summary>
    public static ToolFormat? Detect(string? template)
    {
        if (string.IsNullOrEmpty(template))
        {
            return null;
        }
        if (template.Contains("<|im_start|>", StringComparison.Ordinal) && template.Contains("<tools>", StringComparison.Ordinal) &&
            template.Contains("<tool_call>", StringComparison.Ordinal))
        {
            return new HermesToolFormat(template);
        }
        if (template.Contains("<|start_header_id|>", StringComparison.Ordinal) && template.Contains("ipython", StringComparison.Ordinal) &&
            template.Contains("\"parameters\": ", StringComparison.Ordinal))
        {
            return new Llama3ToolFormat();
        }
        if (template.Contains("[AVAILABLE_TOOLS]", StringComparison.Ordinal) && template.Contains("[TOOL_CALLS]", StringComparison.Ordinal) &&
            template.Contains("[TOOL_RESULTS]", StringComparison.Ordinal))
        {
            return new MistralToolFormat();
        }
        return null;
    }

    /// <summary>The whole prompt, ending where the assistant's reply starts.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="tools">The tools offered now (may be empty while the history holds calls).</param>
    /// <param name="instructions">Text added to the system message (ChatOptions.Instructions, a JSON reply's schema), or null.</param>
    /// <param name="specialTokens">The model's BOS and EOS text, for families whose template writes them between turns.</param>
    public abstract string Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools, string? instructions,
        (string Bos, string Eos) specialTokens);

    /// <summary>The GBNF expression of one call of <paramref name="name"/> whose arguments match the rule <paramref name="arguments"/>.</summary>
    public abstract string CallExpression(string name, string arguments);

    /// <summary>The calls in a finished reply that starts with <see cref="CallStart"/>; null when it is not a complete call.</summary>
    public abstract IReadOnlyList<FunctionCallContent>? ReadCalls(string text);

    // ---- shared pieces -------------------------------------------------------------------

    /// <summary>One message of the conversation as the templates see it.</summary>
    protected sealed record Turn(string Role, string Text, IReadOnlyList<FunctionCallContent> Calls, IReadOnlyList<FunctionResultContent> Results);

    /// <summary>The messages as turns; a tool message holding several results becomes one turn per result.</summary>
    protected static List<Turn> Turns(IReadOnlyList<ChatMessage> messages)
    {
        var turns = new List<Turn>();
        foreach (ChatMessage message in messages)
        {
            string text = string.Concat(message.Contents.OfType<TextContent>().Select(t => t.Text));
            var calls = message.Contents.OfType<FunctionCallContent>().ToList();
            var results = message.Contents.OfType<FunctionResultContent>().ToList();
            if (results.Count > 0)
            {
                turns.AddRange(results.Select(r => new Turn("tool", "", [], [r])));
                continue;
            }
            turns.Add(new Turn(message.Role.Value, text, calls, []));
        }
        return turns;
    }

    /// <summary>The system text: the conversation's first system message and the added instructions; null when both are absent.</summary>
    protected static string? SystemText(List<Turn> turns, string? instructions)
    {
        string? own = turns.Count > 0 && turns[0].Role == "system" ? turns[0].Text : null;
        if (own is not null)
        {
            turns.RemoveAt(0);
        }
        string[] parts = new[] { own, instructions }.Where(s => !string.IsNullOrEmpty(s)).ToArray()!;
        return parts.Length == 0 ? null : string.Join("\n", parts);
    }

    /// <summary>A tool as the chat templates receive it: {"type": "function", "function": {name, description, parameters}}.</summary>
    protected static JsonObject ToolObject(AIFunctionDeclaration tool) => new()
    {
        ["type"] = "function",
        ["function"] = FunctionObject(tool),
    };

    protected static JsonObject FunctionObject(AIFunctionDeclaration tool)
    {
        var function = new JsonObject { ["name"] = tool.Name };
        if (!string.IsNullOrEmpty(tool.Description))
        {
            function["description"] = tool.Description;
        }
        function["parameters"] = JsonNode.Parse(tool.JsonSchema.GetRawText());
        return function;
    }

    /// <summary>A call's arguments as a JSON object.</summary>
    protected static JsonObject Arguments(FunctionCallContent call)
    {
        var arguments = new JsonObject();
        foreach ((string key, object? value) in call.Arguments ?? new Dictionary<string, object?>())
        {
            arguments[key] = value is null ? null : JsonSerializer.SerializeToNode(value, AIJsonUtilities.DefaultOptions.GetTypeInfo(value.GetType()));
        }
        return arguments;
    }

    /// <summary>A tool result as the text a template writes for it (a string as is, anything else as JSON).</summary>
    protected static string ResultText(FunctionResultContent result) => ReplyFormat.Render(result);

    /// <summary>The arguments of a call parsed from JSON text; null when it is not an object.</summary>
    protected static Dictionary<string, object?>? ArgumentsOf(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var arguments = new Dictionary<string, object?>();
        foreach (JsonProperty property in element.EnumerateObject())
        {
            arguments[property.Name] = property.Value.Clone();
        }
        return arguments;
    }

    protected static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// JSON as the Jinja <c>tojson</c> filter of the chat templates writes it (Python's json.dumps):
    /// ", " and ": " between items, or <paramref name="indent"/> spaces per level with "," line ends.
    /// </summary>
    internal static string PythonJson(JsonNode? node, int indent = 0)
    {
        var sb = new StringBuilder();
        Write(node, 0);
        return sb.ToString();

        void Write(JsonNode? value, int depth)
        {
            switch (value)
            {
                case null:
                    sb.Append("null");
                    break;
                case JsonObject obj:
                    if (obj.Count == 0)
                    {
                        sb.Append("{}");
                        break;
                    }
                    sb.Append('{');
                    bool first = true;
                    foreach ((string key, JsonNode? item) in obj)
                    {
                        Separate(ref first, depth + 1);
                        WriteString(sb, key);
                        sb.Append(": ");
                        Write(item, depth + 1);
                    }
                    Close(depth);
                    sb.Append('}');
                    break;
                case JsonArray array:
                    if (array.Count == 0)
                    {
                        sb.Append("[]");
                        break;
                    }
                    sb.Append('[');
                    bool firstItem = true;
                    foreach (JsonNode? item in array)
                    {
                        Separate(ref firstItem, depth + 1);
                        Write(item, depth + 1);
                    }
                    Close(depth);
                    sb.Append(']');
                    break;
                case JsonValue scalar when scalar.GetValueKind() == JsonValueKind.String:
                    WriteString(sb, scalar.GetValue<string>());
                    break;
                default:
                    sb.Append(value.ToJsonString());  // a number, true, false or null
                    break;
            }
        }

        void Separate(ref bool first, int depth)
        {
            if (!first)
            {
                sb.Append(indent > 0 ? "," : ", ");
            }
            first = false;
            if (indent > 0)
            {
                sb.Append('\n').Append(' ', indent * depth);
            }
        }

        void Close(int depth)
        {
            if (indent > 0)
            {
                sb.Append('\n').Append(' ', indent * depth);
            }
        }
    }

    // A JSON string as Python writes it with ensure_ascii off: quote, backslash and controls escaped.
    private static void WriteString(StringBuilder sb, string text)
    {
        sb.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }
        sb.Append('"');
    }

    protected static string Lit(string text) => JsonSchemaGrammar.Literal(text);
}

/// <summary>
/// Qwen2.5 (Hermes-style) tools: the system message lists each tool's JSON inside &lt;tools&gt;&lt;/tools&gt;;
/// a call is &lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;; results come back in a
/// user turn, each inside &lt;tool_response&gt;&lt;/tool_response&gt;.
/// </summary>
internal sealed class HermesToolFormat(string template) : ToolFormat
{
    private const string QwenSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

    // The template's own default system message when it has one (Qwen2.5's), else a neutral one.
    private readonly string _defaultSystem = template.Contains(QwenSystem, StringComparison.Ordinal) ? QwenSystem : "You are a helpful assistant.";

    public override string Name => "hermes";

    public override char CallStart => '<';

    public override string Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools, string? instructions,
        (string Bos, string Eos) specialTokens)
    {
        List<Turn> turns = Turns(messages);
        string system = SystemText(turns, instructions) ?? _defaultSystem;
        var sb = new StringBuilder("<|im_start|>system\n").Append(system);
        if (tools.Count > 0)
        {
            sb.Append("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
              .Append("You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
            foreach (AIFunctionDeclaration tool in tools)
            {
                sb.Append('\n').Append(PythonJson(ToolObject(tool)));
            }
            sb.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n")
              .Append("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
        }
        sb.Append("<|im_end|>\n");
        for (int i = 0; i < turns.Count; i++)
        {
            Turn turn = turns[i];
            if (turn.Role == "tool")
            {
                if (i == 0 || turns[i - 1].Role != "tool")
                {
                    sb.Append("<|im_start|>user");
                }
                sb.Append("\n<tool_response>\n").Append(ResultText(turn.Results[0])).Append("\n</tool_response>");
                if (i == turns.Count - 1 || turns[i + 1].Role != "tool")
                {
                    sb.Append("<|im_end|>\n");
                }
            }
            else if (turn.Role == "assistant" && turn.Calls.Count > 0)
            {
                sb.Append("<|im_start|>assistant");
                if (turn.Text.Length > 0)
                {
                    sb.Append('\n').Append(turn.Text);
                }
                foreach (FunctionCallContent call in turn.Calls)
                {
                    sb.Append("\n<tool_call>\n{\"name\": \"").Append(call.Name).Append("\", \"arguments\": ")
                      .Append(PythonJson(Arguments(call))).Append("}\n</tool_call>");
                }
                sb.Append("<|im_end|>\n");
            }
            else
            {
                sb.Append("<|im_start|>").Append(turn.Role).Append('\n').Append(turn.Text).Append("<|im_end|>\n");
            }
        }
        return sb.Append("<|im_start|>assistant\n").ToString();
    }

    public override string CallExpression(string name, string arguments) =>
        $"{Lit($"<tool_call>\n{{\"name\": \"{name}\", \"arguments\": ")} {arguments} {Lit("}\n</tool_call>")}";

    public override IReadOnlyList<FunctionCallContent>? ReadCalls(string text)
    {
        var calls = new List<FunctionCallContent>();
        int at = 0;
        while ((at = text.IndexOf("<tool_call>", at, StringComparison.Ordinal)) >= 0)
        {
            int end = text.IndexOf("</tool_call>", at, StringComparison.Ordinal);
            if (end < 0)
            {
                return null;
            }
            string json = text[(at + "<tool_call>".Length)..end];
            at = end + "</tool_call>".Length;
            try
            {
                using JsonDocument document = JsonDocument.Parse(json);
                if (!document.RootElement.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String ||
                    !document.RootElement.TryGetProperty("arguments", out JsonElement args) || ArgumentsOf(args) is not { } arguments)
                {
                    return null;
                }
                calls.Add(new FunctionCallContent(NewCallId(), name.GetString()!, arguments));
            }
            catch (JsonException)
            {
                return null;
            }
        }
        return calls.Count == 0 ? null : calls;
    }
}

/// <summary>
/// Llama 3.1/3.2 JSON tool calls (tools in the first user message, as their template does by
/// default): a call is {"name": ..., "parameters": {...}}; results come back in an ipython turn.
/// </summary>
internal sealed class Llama3ToolFormat : ToolFormat
{
    // The template's default date; the model was trained with the header it writes.
    private const string Date = "26 Jul 2024";

    public override string Name => "llama3";

    public override char CallStart => '{';

    public override string Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools, string? instructions,
        (string Bos, string Eos) specialTokens)
    {
        // BOS is left to the tokenizer, as with llama.cpp's own template function.
        List<Turn> turns = Turns(messages);
        string system = (SystemText(turns, instructions) ?? "").Trim();
        var sb = new StringBuilder("<|start_header_id|>system<|end_header_id|>\n\n");
        if (tools.Count > 0)
        {
            sb.Append("Environment: ipython\n");
        }
        sb.Append("Cutting Knowledge Date: December 2023\nToday Date: ").Append(Date).Append("\n\n").Append(system).Append("<|eot_id|>");
        int start = 0;
        if (tools.Count > 0)
        {
            if (turns.Count == 0)
            {
                throw new ArgumentException("Llama 3 puts the tools in the first user message, and there is none.", nameof(messages));
            }
            sb.Append("<|start_header_id|>user<|end_header_id|>\n\n")
              .Append("Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n")
              .Append("Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n");
            foreach (AIFunctionDeclaration tool in tools)
            {
                sb.Append(PythonJson(ToolObject(tool), indent: 4)).Append("\n\n");
            }
            sb.Append(turns[0].Text.Trim()).Append("<|eot_id|>");
            start = 1;
        }
        for (int i = start; i < turns.Count; i++)
        {
            Turn turn = turns[i];
            if (turn.Role == "tool")
            {
                // The template writes a string result through tojson (Jinja strings are iterable): quoted.
                string content = turn.Results[0].Result is string s ? PythonJson(JsonValue.Create(s)) : AsPythonJson(ResultText(turn.Results[0]));
                sb.Append("<|start_header_id|>ipython<|end_header_id|>\n\n").Append(content).Append("<|eot_id|>");
            }
            else if (turn.Calls.Count > 0)
            {
                if (turn.Calls.Count != 1)
                {
                    throw new NotSupportedException("Llama 3 makes one tool call per message; this history has a message with several.");
                }
                FunctionCallContent call = turn.Calls[0];
                sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"").Append(call.Name).Append("\", \"parameters\": ")
                  .Append(PythonJson(Arguments(call))).Append("}<|eot_id|>");
            }
            else
            {
                sb.Append("<|start_header_id|>").Append(turn.Role).Append("<|end_header_id|>\n\n").Append(turn.Text.Trim()).Append("<|eot_id|>");
            }
        }
        return sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString();
    }

    private static string AsPythonJson(string text)
    {
        try
        {
            return PythonJson(JsonNode.Parse(text));
        }
        catch (JsonException)
        {
            return text;  // an error line, not JSON
        }
    }

    public override string CallExpression(string name, string arguments) =>
        $"{Lit($"{{\"name\": \"{name}\", \"parameters\": ")} {arguments} \"}}\"";

    public override IReadOnlyList<FunctionCallContent>? ReadCalls(string text)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String ||
                !root.TryGetProperty("parameters", out JsonElement args) || ArgumentsOf(args) is not { } arguments)
            {
                return null;
            }
            return [new FunctionCallContent(NewCallId(), name.GetString()!, arguments)];
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Mistral tools (Mistral Nemo's template): [AVAILABLE_TOOLS][...][/AVAILABLE_TOOLS] before the
/// last user message; a call is [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "&lt;9 letters or digits&gt;"}];
/// a result is [TOOL_RESULTS]{"content": ..., "call_id": ...}[/TOOL_RESULTS].
/// </summary>
internal sealed class MistralToolFormat : ToolFormat
{
    public override string Name => "mistral";

    public override char CallStart => '[';

    public override string Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools, string? instructions,
        (string Bos, string Eos) specialTokens)
    {
        List<Turn> turns = Turns(messages);
        string? system = SystemText(turns, instructions);
        int lastUser = turns.FindLastIndex(t => t.Role == "user");
        var sb = new StringBuilder();
        for (int i = 0; i < turns.Count; i++)
        {
            Turn turn = turns[i];
            if (turn.Role == "user")
            {
                if (tools.Count > 0 && i == lastUser)
                {
                    sb.Append("[AVAILABLE_TOOLS][");
                    for (int t = 0; t < tools.Count; t++)
                    {
                        // The template writes string values unescaped and the rest with tojson.
                        sb.Append("{\"type\": \"function\", \"function\": {");
                        bool first = true;
                        foreach ((string key, JsonNode? value) in FunctionObject(tools[t]))
                        {
                            sb.Append(first ? "" : ", ");
                            first = false;
                            sb.Append('"').Append(key).Append("\": ");
                            if (value is JsonValue v && v.TryGetValue(out string? text))
                            {
                                sb.Append('"').Append(text).Append('"');
                            }
                            else
                            {
                                sb.Append(PythonJson(value));
                            }
                        }
                        sb.Append("}}").Append(t == tools.Count - 1 ? "]" : ", ");
                    }
                    sb.Append("[/AVAILABLE_TOOLS]");
                }
                sb.Append("[INST]");
                if (i == turns.Count - 1 && system is not null)
                {
                    sb.Append(system).Append("\n\n");
                }
                sb.Append(turn.Text).Append("[/INST]");
            }
            else if (turn.Calls.Count > 0)
            {
                sb.Append("[TOOL_CALLS][");
                for (int c = 0; c < turn.Calls.Count; c++)
                {
                    FunctionCallContent call = turn.Calls[c];
                    var function = new JsonObject { ["name"] = call.Name, ["arguments"] = Arguments(call) };
                    string json = PythonJson(function);
                    sb.Append(json[..^1]).Append(", \"id\": \"").Append(CallId(call.CallId)).Append("\"}");
                    sb.Append(c == turn.Calls.Count - 1 ? "]" + specialTokens.Eos : ", ");
                }
            }
            else if (turn.Role == "assistant")
            {
                sb.Append(turn.Text).Append(specialTokens.Eos);
            }
            else if (turn.Role == "tool")
            {
                FunctionResultContent result = turn.Results[0];
                sb.Append("[TOOL_RESULTS]{\"content\": ").Append(ResultText(result)).Append(", \"call_id\": \"").Append(CallId(result.CallId))
                  .Append("\"}[/TOOL_RESULTS]");
            }
            else
            {
                throw new NotSupportedException($"Mistral's template takes user, assistant and tool messages after one leading system message, not a '{turn.Role}' message here.");
            }
        }
        // BOS is left to the tokenizer; Mistral's template opens no assistant turn.
        return sb.ToString();
    }

    /// <summary>Mistral's templates accept call ids of exactly 9 letters or digits; others are mapped to one, the same for a call and its result.</summary>
    internal static string CallId(string id)
    {
        if (id.Length == 9 && id.All(char.IsAsciiLetterOrDigit))
        {
            return id;
        }
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(id));
        return Convert.ToHexString(hash)[..9].ToLowerInvariant();
    }

    public override string CallExpression(string name, string arguments) =>
        $"{Lit($"[TOOL_CALLS][{{\"name\": \"{name}\", \"arguments\": ")} {arguments} {Lit(", \"id\": \"")} [a-zA-Z0-9]{{9}} {Lit("\"}]")}";

    public override IReadOnlyList<FunctionCallContent>? ReadCalls(string text)
    {
        const string Marker = "[TOOL_CALLS]";
        if (!text.StartsWith(Marker, StringComparison.Ordinal))
        {
            return null;
        }
        try
        {
            using JsonDocument document = JsonDocument.Parse(text[Marker.Length..]);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            var calls = new List<FunctionCallContent>();
            foreach (JsonElement item in document.RootElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String ||
                    !item.TryGetProperty("arguments", out JsonElement args) || ArgumentsOf(args) is not { } arguments)
                {
                    return null;
                }
                string id = item.TryGetProperty("id", out JsonElement given) && given.ValueKind == JsonValueKind.String ? given.GetString()! : NewCallId();
                calls.Add(new FunctionCallContent(id, name.GetString()!, arguments));
            }
            return calls.Count == 0 ? null : calls;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
