using System.ComponentModel;
using System.Text.Json;
using Heed.AI;
using Heed.Llama;
using Heed.Tests.ShippedModel;
using Json.Schema;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Heed.Tests.AI;

/// <summary>
/// Tool calls and structured output from the shipped model, which is not a chat model: the grammar
/// must make every reply valid anyway. Validity is checked with JsonSchema.Net, not with the
/// converter under test.
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class ToolCallingTests(ShippedModelFixture fixture, ITestOutputHelper output)
{
    public enum Genre { Fiction, Science, History }

    public sealed record Address(string Street, string City, int Zip);

    public sealed record Book(string Title, int Pages, double Rating, bool Available, Genre Genre, string[] Tags, Address Publisher, int? Year);

    [Description("Files a book in the catalogue.")]
    private static string FileBook(Book book, [Description("Shelf number")] int shelf, string? note = null) => "filed";

    [Description("Books a room.")]
    private static string BookRoom(DateTime start, Guid requestId, Genre theme, bool[] flags, double? budget = null) => "booked";

    [Description("Looks up a pass key.")]
    private static string PassKey([Description("Whose pass key")] string owner) => $"the pass key of {owner} is 4321";

    private static IEnumerable<AIFunction> Functions() =>
    [
        AIFunctionFactory.Create(FileBook, "file_book"),
        AIFunctionFactory.Create(BookRoom, "book_room"),
        AIFunctionFactory.Create(PassKey, "get_pass_key"),
        .. new HeedTools().Functions,
    ];

    private LlamaChatClient Client() => new(fixture.Model, new LlamaContextOptions { ContextSize = 2048, Threads = 2 },
        new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 1024, JsonLimits = new(MaxStringLength: 40, MaxArrayItems: 4) });

    private static readonly ChatMessage[] Question = [new(ChatRole.User, "Please use the tool for this request.")];

    // JsonSchema.Net with format checks on (date-time, uuid).
    private static EvaluationResults Validate(JsonElement schema, JsonElement instance) =>
        JsonSchema.FromText(schema.GetRawText()).Evaluate(instance, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });

    [Fact]
    public async Task EveryCallParsesAndIsValidForItsSchema()
    {
        using LlamaChatClient client = Client();
        int calls = 0, valid = 0;
        var failures = new List<string>();
        foreach (AIFunction function in Functions())
        {
            // Greedy, then sampled with three seeds: four different replies per tool.
            foreach (ChatOptions options in new[] { new ChatOptions() }.Concat(new long[] { 1, 2, 3 }.Select(seed => new ChatOptions { Temperature = 1f, Seed = seed })))
            {
                options.Tools = [function];
                options.ToolMode = ChatToolMode.RequireSpecific(function.Name);
                ChatResponse response = await client.GetResponseAsync(Question, options);
                calls++;
                FunctionCallContent? call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().SingleOrDefault();
                if (call is null)
                {
                    failures.Add($"{function.Name}: no call ({response.FinishReason}): {response.Text}");
                    continue;
                }
                Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
                Assert.Equal(function.Name, call.Name);
                Assert.False(string.IsNullOrEmpty(call.CallId));
                JsonElement arguments = JsonSerializer.SerializeToElement(call.Arguments);
                EvaluationResults result = Validate(function.JsonSchema, arguments);
                if (result.IsValid)
                {
                    valid++;
                }
                else
                {
                    failures.Add($"{function.Name}: {arguments.GetRawText()} fails {function.JsonSchema.GetRawText()}");
                }
            }
        }
        output.WriteLine($"schema-valid tool calls: {valid} of {calls}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(4 * Functions().Count(), calls);
    }

    [Fact]
    public async Task StreamingDeliversTheCallWhole()
    {
        using LlamaChatClient client = Client();
        var options = new ChatOptions { Tools = [Functions().Single(f => f.Name == "get_pass_key")], ToolMode = ChatToolMode.RequireAny };
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(Question, options))
        {
            updates.Add(update);
        }
        ChatResponse response = updates.ToChatResponse();
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        Assert.Equal("get_pass_key", Assert.Single(updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>()).Name);
    }

    [Fact]
    public async Task ACallCutShortByMaxOutputTokensIsNoCall()
    {
        using LlamaChatClient client = Client();
        var options = new ChatOptions { Tools = [Functions().Single(f => f.Name == "get_pass_key")], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 3 };
        ChatResponse response = await client.GetResponseAsync(Question, options);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.StartsWith("{", response.Text);
    }

    [Fact]
    public async Task StructuredOutputDeserializesAndIsValidForItsSchema()
    {
        using LlamaChatClient client = Client();
        ChatResponse<Book> response = await client.GetResponseAsync<Book>("Describe a book.", new ChatOptions { Temperature = 1f, Seed = 7 });
        output.WriteLine(response.Text);
        Assert.True(response.TryGetResult(out Book? book), response.Text);
        Assert.NotNull(book!.Title);
        Assert.NotNull(book.Publisher);
        Assert.True(Enum.IsDefined(book.Genre));
        JsonElement schema = AIJsonUtilities.CreateJsonSchema(typeof(Book));
        Assert.True(Validate(schema, JsonDocument.Parse(response.Text).RootElement).IsValid, response.Text);
    }

    [Fact]
    public async Task JsonWithoutASchemaIsAnObject()
    {
        using LlamaChatClient client = Client();
        ChatResponse response = await client.GetResponseAsync(Question, new ChatOptions { ResponseFormat = ChatResponseFormat.Json, MaxOutputTokens = 600 });
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(response.Text).RootElement.ValueKind);
    }

    [Fact]
    public async Task ARoundTripThroughFunctionInvokingChatClientCallsTheToolAndAnswers()
    {
        using LlamaChatClient llama = Client();
        int invoked = 0;
        AIFunction passKey = AIFunctionFactory.Create((string owner) => { invoked++; return $"the pass key of {owner} is 4321"; }, "get_pass_key", "Looks up a pass key.");
        using IChatClient client = llama.AsBuilder().UseFunctionInvocation(configure: c => c.MaximumIterationsPerRequest = 2).Build();
        ChatResponse response = await client.GetResponseAsync("What is the pass key of the vault?",
            new ChatOptions { Tools = [passKey], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200 });
        Assert.True(invoked >= 1);
        FunctionCallContent call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().First();
        FunctionResultContent result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().First();
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal($"the pass key of {call.Arguments!["owner"]} is 4321", result.Result?.ToString());
        output.WriteLine(string.Join("\n", response.Messages.Select(m => $"{m.Role}: {string.Join(" ", m.Contents.Select(Describe))}")));
    }

    private static string Describe(AIContent content) => content switch
    {
        FunctionCallContent c => $"call {c.Name}({JsonSerializer.Serialize(c.Arguments)})",
        FunctionResultContent r => $"result {r.Result}",
        TextContent t => t.Text,
        _ => content.GetType().Name,
    };

    [Fact]
    public async Task AToolResultOnTheNextTurnReachesThePrompt()
    {
        using LlamaChatClient client = Client();
        var call = new FunctionCallContent("call_1", "get_pass_key", new Dictionary<string, object?> { ["owner"] = "vault" });
        ChatMessage[] history =
        [
            new(ChatRole.User, "What is the pass key of the vault?"),
            new(ChatRole.Assistant, [call]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "the pass key of vault is 4321")]),
        ];
        ChatResponse response = await client.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 1 });
        // The prompt written by hand: the call in the documented envelope, the result as the tool's text.
        string prompt = ChatTemplate.FromModel(fixture.Model, "chatml").Format(
        [
            ("user", "What is the pass key of the vault?"),
            ("assistant", """{"tool_call":{"name":"get_pass_key","arguments":{"owner":"vault"}}}"""),
            ("tool", "the pass key of vault is 4321"),
        ]);
        int expected = fixture.Model.Tokenizer.Tokenize(prompt, addSpecial: false, parseSpecial: true).Length + (fixture.Model.Tokenizer.AddsBeginningOfSequence ? 1 : 0);
        Assert.Equal(expected, response.Usage!.InputTokenCount);
    }

    [Fact]
    public async Task AnUnsupportedSchemaIsAClearErrorBeforeGeneration()
    {
        using LlamaChatClient client = Client();
        using JsonDocument schema = JsonDocument.Parse("""{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}$"}}}""");
        AIFunctionDeclaration tool = AIFunctionFactory.CreateDeclaration("lookup", "Looks a code up.", schema.RootElement.Clone());
        var e = await Assert.ThrowsAsync<NotSupportedException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireAny }));
        Assert.Contains("'lookup'", e.Message);
        Assert.Contains("'pattern'", e.Message);
        e = await Assert.ThrowsAsync<NotSupportedException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema.RootElement.Clone()) }));
        Assert.Contains("'pattern'", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() =>
            client.GetResponseAsync(Question, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireSpecific("missing") }));
    }
}
