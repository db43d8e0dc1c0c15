using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace Heed.AI;

/// <summary>
/// How one chat reply must be shaped when it is more than free text: a tool call, or JSON for a
/// schema. It writes the instructions the model reads, the grammar that constrains decoding, and
/// reads the finished output back into M.E.AI contents.
/// </summary>
/// <remarks>
/// A model whose chat template has a tool format of its own (<see cref="ToolFormat"/>: Qwen2.5/Hermes,
/// Llama 3.1, Mistral) is given the tools and calls in that format. Any other model gets one JSON
/// envelope: it replies <c>{"tool_call": {"name": ..., "arguments": {...}}}</c>, described in the
/// system message, and earlier calls in the history are written the same way. Under
/// <see cref="ChatToolMode.Auto"/> the grammar allows a call or an answer, and the model's own
/// probabilities choose: the answer is free text that does not start like a call (or
/// <c>{"answer": ...}</c> in the envelope when a JSON response format is asked for too).
/// </remarks>
internal sealed class ReplyFormat
{
    private const string CallKey = "tool_call";
    private const string AnswerKey = "answer";

    // M.E.AI's options (they serialize its content types) but compact, as the grammar writes JSON.
    private static readonly JsonSerializerOptions CompactJson = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    // Text the model reads keeps its characters ("vault's", not "vault\u0027s").
    private static readonly JsonSerializerOptions ModelFacingJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly bool _answerIsJson;

    private ReplyFormat(string? instructions, string grammar, bool toolsOffered, bool answerIsJson, ToolFormat? family = null,
        IReadOnlyList<AIFunctionDeclaration>? tools = null)
    {
        Instructions = instructions;
        Grammar = grammar;
        ToolsOffered = toolsOffered;
        _answerIsJson = answerIsJson;
        Family = family;
        Tools = tools ?? [];
    }

    /// <summary>Added to the system message; null when the family's template describes the tools itself.</summary>
    public string? Instructions { get; }

    /// <summary>The model family's tool format the prompt and grammar follow; null for the envelope or a plain JSON reply.</summary>
    public ToolFormat? Family { get; }

    /// <summary>The tools offered.</summary>
    public IReadOnlyList<AIFunctionDeclaration> Tools { get; }

    /// <summary>GBNF for every reply this format accepts.</summary>
    public string Grammar { get; }

    /// <summary>Whether the reply is an envelope holding a tool call or an answer.</summary>
    public bool ToolsOffered { get; }

    /// <summary>The format a request asks for, or null for free text. Checks the tools and schema first.</summary>
    /// <exception cref="NotSupportedException">A tool that is not a function, or a schema the grammar cannot enforce.</exception>
    /// <exception cref="ArgumentException">RequireSpecific names a function that is not among the tools.</exception>
    public static ReplyFormat? For(ChatOptions? options, JsonGrammarLimits limits, ToolFormat? family = null)
    {
        if (options is null)
        {
            return null;
        }
        var json = options.ResponseFormat as ChatResponseFormatJson;
        IList<AITool>? tools = options.Tools;
        if (tools is not { Count: > 0 } || options.ToolMode is NoneChatToolMode)
        {
            return json is null ? null : ForJson(json, limits);
        }
        var functions = new List<AIFunctionDeclaration>(tools.Count);
        foreach (AITool tool in tools)
        {
            functions.Add(tool as AIFunctionDeclaration ?? throw new NotSupportedException(
                $"The tool '{tool.Name}' is a {tool.GetType().Name}; LlamaChatClient calls functions only (AIFunction, AIFunctionDeclaration)."));
        }
        if (options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } required })
        {
            functions = functions.Where(f => f.Name == required).ToList();
            if (functions.Count == 0)
            {
                throw new ArgumentException($"ToolMode requires the function '{required}', which is not among ChatOptions.Tools.", nameof(options));
            }
        }
        bool mayAnswer = options.ToolMode is null or AutoChatToolMode;
        return family is null ? ForTools(functions, mayAnswer, json, limits) : ForFamily(family, functions, mayAnswer, json, limits);
    }

    private static ReplyFormat ForFamily(ToolFormat family, List<AIFunctionDeclaration> functions, bool mayAnswer, ChatResponseFormatJson? json,
        JsonGrammarLimits limits)
    {
        var builder = new JsonSchemaGrammar.Builder(limits);
        var calls = new List<string>(functions.Count);
        foreach (AIFunctionDeclaration function in functions)
        {
            calls.Add(builder.Rule(function.Name + "-call", family.CallExpression(function.Name, Arguments(builder, function))));
        }
        string root = string.Join(" | ", calls);
        string? instructions = null;
        if (mayAnswer)
        {
            if (json is null)
            {
                root += " | " + FreeText(builder, family.CallStart);
            }
            else
            {
                root += " | " + (json.Schema is { } schema ? builder.Value(schema, "answer-json", "#") : builder.AnyObject());
                instructions = ForJson(json, limits).Instructions + " when you answer without a tool";
            }
        }
        return new ReplyFormat(instructions, builder.Build(root), toolsOffered: true, answerIsJson: json is not null, family, functions);
    }

    private static string Arguments(JsonSchemaGrammar.Builder builder, AIFunctionDeclaration function)
    {
        try
        {
            return builder.Value(function.JsonSchema, function.Name + "-args", "#");
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"The parameters of the tool '{function.Name}' cannot be constrained: {e.Message}", e);
        }
    }

    // Text of at least one character whose first is not the one every call starts with: the
    // model's first token decides between calling and answering.
    private static string FreeText(JsonSchemaGrammar.Builder builder, char callStart)
    {
        string excluded = callStart switch { '[' => "\\[", ']' => "\\]", '\\' => "\\\\", '^' => "\\^", '-' => "\\-", _ => callStart.ToString() };
        return builder.Rule("answer-text", $"[^{excluded}\\x00] [^\\x00]*");
    }

    private static ReplyFormat ForJson(ChatResponseFormatJson json, JsonGrammarLimits limits)
    {
        if (json.Schema is not { } schema)
        {
            return new ReplyFormat("Reply with one JSON object.", JsonSchemaGrammar.AnyObject(limits), toolsOffered: false, answerIsJson: true);
        }
        string instructions = $"Reply with JSON valid for this schema{Named(json)}: {JsonSchemaGrammar.Compact(schema)}";
        return new ReplyFormat(instructions, JsonSchemaGrammar.FromSchema(schema, limits), toolsOffered: false, answerIsJson: true);
    }

    private static string Named(ChatResponseFormatJson json) =>
        json.SchemaName is { Length: > 0 } name ? $" ({name}{(json.SchemaDescription is { Length: > 0 } d ? ": " + d : "")})" : "";

    private static ReplyFormat ForTools(List<AIFunctionDeclaration> functions, bool mayAnswer, ChatResponseFormatJson? json, JsonGrammarLimits limits)
    {
        var builder = new JsonSchemaGrammar.Builder(limits);
        var calls = new List<string>(functions.Count);
        var descriptions = new JsonArray();
        foreach (AIFunctionDeclaration function in functions)
        {
            string arguments = Arguments(builder, function);
            calls.Add(builder.Rule(function.Name + "-call",
                $"{JsonSchemaGrammar.Literal($"{{\"{CallKey}\":")} sp {JsonSchemaGrammar.Literal("{\"name\":")} sp " +
                $"{JsonSchemaGrammar.Literal(JsonSerializer.Serialize(function.Name, JsonText.Default.String))} {JsonSchemaGrammar.Builder.Separator} " +
                $"{JsonSchemaGrammar.Literal("\"arguments\":")} sp {arguments} \"}}\" \"}}\""));
            descriptions.Add((JsonNode)new JsonObject { ["name"] = function.Name, ["description"] = function.Description, ["parameters"] = JsonNode.Parse(function.JsonSchema.GetRawText()) });
        }
        string root = string.Join(" | ", calls);
        var instructions = new StringBuilder()
            .Append("You can call these tools: ").Append(descriptions.ToJsonString(ModelFacingJson)).Append('\n')
            .Append("To call a tool, reply with {\"").Append(CallKey).Append("\": {\"name\": <tool name>, \"arguments\": {<arguments>}}}.");
        if (mayAnswer && json is null)
        {
            root += " | " + FreeText(builder, '{');
            instructions.Append(" To answer without a tool, reply with plain text.");
        }
        else if (mayAnswer && json is not null)
        {
            string answer = json.Schema is { } schema ? builder.Value(schema, "answer-json", "#") : builder.AnyObject();
            root += $" | {JsonSchemaGrammar.Literal($"{{\"{AnswerKey}\":")} sp {answer} \"}}\"";
            instructions.Append(" To answer without a tool, reply with {\"").Append(AnswerKey).Append("\": <JSON answer>}.");
        }
        return new ReplyFormat(instructions.ToString(), builder.Build(root), toolsOffered: true, answerIsJson: json is not null, tools: functions);
    }

    /// <summary>
    /// The contents of a finished reply: <see cref="FunctionCallContent"/>s for calls, text (or the
    /// JSON text) for an answer; null when the text is not a complete reply (generation ran out).
    /// </summary>
    public IList<AIContent>? Read(string text)
    {
        if (Family is { } family)
        {
            if (text.Length > 0 && text[0] == family.CallStart && family.ReadCalls(text) is { } calls)
            {
                return [.. calls];
            }
            if (_answerIsJson && !IsJson(text))
            {
                return null;
            }
            return text.Length == 0 || text[0] == family.CallStart && !_answerIsJson ? null : [new TextContent(text)];
        }
        if (ToolsOffered && !_answerIsJson && text.Length > 0 && text[0] != '{')
        {
            return [new TextContent(text)];  // the free-text answer under Auto
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (!ToolsOffered)
            {
                return [new TextContent(text)];
            }
            if (root.TryGetProperty(CallKey, out JsonElement call))
            {
                var arguments = new Dictionary<string, object?>();
                foreach (JsonProperty argument in call.GetProperty("arguments").EnumerateObject())
                {
                    arguments[argument.Name] = argument.Value.Clone();
                }
                return [new FunctionCallContent("call_" + Guid.NewGuid().ToString("N")[..12], call.GetProperty("name").GetString()!, arguments)];
            }
            JsonElement answer = root.GetProperty(AnswerKey);
            return [new TextContent(_answerIsJson ? answer.GetRawText() : answer.GetString())];
        }
    }

    private static bool IsJson(string text)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>An earlier tool call as the model would have written it.</summary>
    public static string Render(FunctionCallContent call) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            [CallKey] = new Dictionary<string, object?> { ["name"] = call.Name, ["arguments"] = call.Arguments ?? new Dictionary<string, object?>() },
        }, CompactJson.GetTypeInfo(typeof(Dictionary<string, object>)));

    /// <summary>A tool's result as text for the model.</summary>
    public static string Render(FunctionResultContent result) => result.Result switch
    {
        null => result.Exception is { } e ? "Error: " + e.Message : "null",
        string s => s,
        JsonElement element => element.GetRawText(),
        object value => JsonSerializer.Serialize(value, CompactJson.GetTypeInfo(value.GetType())),
    };
}
