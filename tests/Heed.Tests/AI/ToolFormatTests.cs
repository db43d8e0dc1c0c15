using System.ComponentModel;
using System.Text.Json;
using Heed.AI;
using Heed.Llama;
using Heed.TestModels;
using Json.Schema;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Heed.Tests.AI;

/// <summary>
/// Tools in each model family's own format. Each model is a random-weight tiny GGUF carrying that
/// family's real chat template (Qwen2.5-7B-Instruct, Llama-3.1-8B-Instruct and Mistral-Nemo-Instruct-2407
/// as published with those models, read from the pinned llama.cpp source's models/templates). The
/// expected prompts below were rendered from those Jinja templates with Python's jinja2 (BOS left out: Heed's tokenizer adds
/// it, as with llama.cpp's own template function). Calls are checked with JsonSchema.Net, not with
/// the grammar converter under test.
/// </summary>
public sealed class ToolFormatTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("heed-tool-formats-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly JsonElement PassKeySchema = JsonDocument.Parse(
        """{"type": "object", "properties": {"owner": {"type": "string", "description": "Whose pass key"}}, "required": ["owner"]}""").RootElement.Clone();

    private static AIFunctionDeclaration PassKeyTool() => AIFunctionFactory.CreateDeclaration("get_pass_key", "Looks up a pass key.", PassKeySchema);

    private static ChatMessage[] Conversation(string callId) =>
    [
        new(ChatRole.System, "You are terse."),
        new(ChatRole.User, "What is the pass key of the blue vault?"),
        new(ChatRole.Assistant, [new FunctionCallContent(callId, "get_pass_key", new Dictionary<string, object?> { ["owner"] = "blue vault" })]),
        new(ChatRole.Tool, [new FunctionResultContent(callId, "The pass key of blue vault is 4321.")]),
    ];

    private const string QwenTools =
        "<|im_start|>system\nYou are terse.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
        """{"type": "function", "function": {"name": "get_pass_key", "description": "Looks up a pass key.", "parameters": {"type": "object", "properties": {"owner": {"type": "string", "description": "Whose pass key"}}, "required": ["owner"]}}}""" +
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
        "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
        "<|im_start|>user\nWhat is the pass key of the blue vault?<|im_end|>\n";

    private const string QwenExpected = QwenTools +
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_pass_key\", \"arguments\": {\"owner\": \"blue vault\"}}\n</tool_call><|im_end|>\n" +
        "<|im_start|>user\n<tool_response>\nThe pass key of blue vault is 4321.\n</tool_response><|im_end|>\n<|im_start|>assistant\n";

    private const string LlamaTools =
        "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
        "You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" +
        "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
        "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n" +
        "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_pass_key\",\n        \"description\": \"Looks up a pass key.\",\n" +
        "        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"owner\": {\n" +
        "                    \"type\": \"string\",\n                    \"description\": \"Whose pass key\"\n                }\n            },\n" +
        "            \"required\": [\n                \"owner\"\n            ]\n        }\n    }\n}\n\n" +
        "What is the pass key of the blue vault?<|eot_id|>";

    private const string LlamaExpected = LlamaTools +
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_pass_key\", \"parameters\": {\"owner\": \"blue vault\"}}<|eot_id|>" +
        "<|start_header_id|>ipython<|end_header_id|>\n\n\"The pass key of blue vault is 4321.\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

    private const string MistralTools =
        "[AVAILABLE_TOOLS][" +
        """{"type": "function", "function": {"name": "get_pass_key", "description": "Looks up a pass key.", "parameters": {"type": "object", "properties": {"owner": {"type": "string", "description": "Whose pass key"}}, "required": ["owner"]}}}""" +
        "][/AVAILABLE_TOOLS]";

    private const string MistralExpected = MistralTools +
        "[INST]What is the pass key of the blue vault?[/INST]" +
        "[TOOL_CALLS][{\"name\": \"get_pass_key\", \"arguments\": {\"owner\": \"blue vault\"}, \"id\": \"a1b2c3d4e\"}]<|eos|>" +
        "[TOOL_RESULTS]{\"content\": The pass key of blue vault is 4321., \"call_id\": \"a1b2c3d4e\"}[/TOOL_RESULTS]";

    // The first turn: Mistral puts the system message in front of the last user message.
    private const string MistralFirstTurn = MistralTools + "[INST]You are terse.\n\nWhat is the pass key of the blue vault?[/INST]";

    private const string LlamaFirstTurn = LlamaTools + "<|start_header_id|>assistant<|end_header_id|>\n\n";

    private const string QwenFirstTurn = QwenTools + "<|im_start|>assistant\n";

    public static TheoryData<string, string, string, string, string> Families => new()
    {
        // family, template file, call id, expected conversation, expected first turn
        { "hermes", "Qwen-Qwen2.5-7B-Instruct.jinja", "call_1", QwenExpected, QwenFirstTurn },
        { "llama3", "meta-llama-Llama-3.1-8B-Instruct.jinja", "call_1", LlamaExpected, LlamaFirstTurn },
        { "mistral", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "a1b2c3d4e", MistralExpected, MistralFirstTurn },
    };

    private LlamaModel Load(string templateFile, string architecture = "llama", Action<string, float[]>? editTensor = null)
    {
        string template = File.ReadAllText(RepositoryPaths.LlamaCppTemplate(templateFile));
        string path = Path.Combine(_folder, Path.ChangeExtension(templateFile, ".gguf"));
        TinyLlama.Write(path, seed: 4242, architecture, gguf => gguf.Add("tokenizer.chat_template", template), editTensor);
        return LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
    }

    // The tiny vocabulary spends about a token per byte: tool lists and random strings need room.
    private static LlamaChatClient Client(LlamaModel model) => new(model, new LlamaContextOptions { ContextSize = 4096, Threads = 2 },
        new LlamaChatClientOptions { DefaultMaxOutputTokens = 600, JsonLimits = new(MaxStringLength: 16, MaxArrayItems: 2) });

    [Theory]
    [MemberData(nameof(Families))]
    public void TheFamilyIsDetectedAndTheConversationRendersAsItsTemplateDoes(string family, string templateFile, string callId, string expected, string firstTurn)
    {
        using LlamaModel model = Load(templateFile);
        using LlamaChatClient client = Client(model);
        var options = new ChatOptions { Tools = [PassKeyTool()], ToolMode = ChatToolMode.Auto };
        Assert.Equal(family, client.ToolFormatOf(model));
        Assert.Equal(expected, client.RenderPrompt(model, Conversation(callId), options));
        Assert.Equal(firstTurn, client.RenderPrompt(model, Conversation(callId)[..2], options));
    }

    [Fact]
    public void AModelWithoutAToolFormatKeepsTheEnvelope()
    {
        using LlamaModel model = Load("Qwen-Qwen2.5-7B-Instruct.jinja");
        // The tiny model's own template (turns between BOS and EOS) has no tool format; llama.cpp needs a fallback for it.
        string path = Path.Combine(_folder, "plain.gguf");
        TinyLlama.Write(path, seed: 4242);
        using LlamaModel plain = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
        using var client = new LlamaChatClient(plain, new LlamaContextOptions { ContextSize = 1024, Threads = 2 }, new LlamaChatClientOptions { FallbackTemplate = "chatml" });
        Assert.Null(client.ToolFormatOf(plain));
        string prompt = client.RenderPrompt(plain, Conversation("call_1"), new ChatOptions { Tools = [PassKeyTool()], ToolMode = ChatToolMode.RequireAny });
        Assert.Contains("""{"tool_call":{"name":"get_pass_key","arguments":{"owner":"blue vault"}}}""", prompt);
        Assert.StartsWith("<|im_start|>system\nYou are terse.\nYou can call these tools: ", prompt);
    }

    [Description("Files a book.")]
    private static string FileBook(string title, [Description("Shelf number")] int shelf, bool available, string[] tags, DateTime? due = null) => "filed";

    [Theory]
    [MemberData(nameof(Families))]
    public async Task ConstrainedCallsInTheFamilySyntaxParseAndAreValidForTheirSchema(string family, string templateFile, string callId, string expected, string firstTurn)
    {
        _ = (callId, expected, firstTurn);
        using LlamaModel model = Load(templateFile);
        using LlamaChatClient client = Client(model);
        AIFunctionDeclaration[] tools = [PassKeyTool(), AIFunctionFactory.Create(FileBook, "file_book")];
        int calls = 0, valid = 0;
        var failures = new List<string>();
        foreach (AIFunctionDeclaration tool in tools)
        {
            foreach (ChatOptions options in new[] { new ChatOptions() }.Concat(new long[] { 1, 2, 3 }.Select(seed => new ChatOptions { Temperature = 1f, Seed = seed })))
            {
                options.Tools = [.. tools];
                options.ToolMode = ChatToolMode.RequireSpecific(tool.Name);
                ChatResponse response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Please use the tool.")], options);
                calls++;
                FunctionCallContent? call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().SingleOrDefault();
                if (call is null || response.FinishReason != ChatFinishReason.ToolCalls || call.Name != tool.Name)
                {
                    failures.Add($"{tool.Name}: no call ({response.FinishReason}): {response.Text}");
                    continue;
                }
                JsonElement arguments = JsonSerializer.SerializeToElement(call.Arguments);
                EvaluationResults result = JsonSchema.FromText(tool.JsonSchema.GetRawText())
                    .Evaluate(arguments, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });
                if (result.IsValid)
                {
                    valid++;
                }
                else
                {
                    failures.Add($"{tool.Name}: {arguments.GetRawText()} fails {tool.JsonSchema.GetRawText()}");
                }
            }
        }
        output.WriteLine($"{family}: schema-valid calls {valid} of {calls}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(8, calls);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public async Task TheRawReplyIsInTheFamilySyntax(string family, string templateFile, string callId, string expected, string firstTurn)
    {
        _ = (callId, expected, firstTurn);
        using LlamaModel model = Load(templateFile);
        using LlamaChatClient client = Client(model);
        // Streaming shows the text the model wrote before it was read as a call; a grammar-free
        // reading of it must find the family's markers around the call's JSON.
        string raw = await client.RawReplyAsync([new ChatMessage(ChatRole.User, "Please use the tool.")],
            new ChatOptions { Tools = [PassKeyTool()], ToolMode = ChatToolMode.RequireAny });
        output.WriteLine($"{family}: {raw}");
        string json = family switch
        {
            "hermes" => Between(raw, "<tool_call>\n", "\n</tool_call>"),
            "llama3" => raw,
            _ => Between(raw, "[TOOL_CALLS]", null),
        };
        using JsonDocument document = JsonDocument.Parse(json);
        JsonElement call = family == "mistral" ? document.RootElement[0] : document.RootElement;
        Assert.Equal("get_pass_key", call.GetProperty("name").GetString());
        JsonElement arguments = call.GetProperty(family == "llama3" ? "parameters" : "arguments");
        Assert.True(JsonSchema.FromText(PassKeySchema.GetRawText()).Evaluate(arguments).IsValid, arguments.GetRawText());
        if (family == "mistral")
        {
            Assert.Matches("^[a-zA-Z0-9]{9}$", call.GetProperty("id").GetString());
        }
    }

    private static string Between(string text, string start, string? end)
    {
        Assert.StartsWith(start, text);
        string rest = text[start.Length..];
        if (end is null)
        {
            return rest;
        }
        Assert.EndsWith(end, rest);
        return rest[..^end.Length];
    }
}
