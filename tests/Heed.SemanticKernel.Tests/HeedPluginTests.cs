using System.Text.Json;
using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Heed.TestModels;
using Heed.Tests.ShippedModel;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace Heed.SemanticKernel.Tests;

/// <summary>
/// A real <see cref="Kernel"/> with the Heed plugin (from <c>builder.Plugins.AddHeed()</c> over
/// <c>AddHeed</c>'s services) and Heed's chat client as its chat completion service.
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class HeedPluginTests(ShippedModelFixture fixture) : IDisposable
{
    private const string Fact = "The pass key of the blue vault is 4321.";
    private static readonly string[] Documents = ["The red fox sleeps in the barn all winter.", Fact, "Rain fell on the hills for three days."];

    private readonly string _folder = Directory.CreateTempSubdirectory("heed-sk-").FullName;
    private readonly List<IDisposable> _providers = [];

    public void Dispose()
    {
        _providers.ForEach(p => p.Dispose());
        Directory.Delete(_folder, recursive: true);
    }

    private Kernel BuildKernel(Func<IChatClient, IChatClient>? wrapChat = null)
    {
        IKernelBuilder builder = Kernel.CreateBuilder();
        builder.Services.AddHeed(o =>
        {
            o.ModelPath = fixture.ModelPath;
            o.GpuLayers = 0;
            o.Threads = 2;
            o.PoolSize = 1;
            o.AllowedRoots = [_folder];
            o.FallbackChatTemplate = "chatml";
            o.DefaultMaxOutputTokens = 200;
        });
        builder.AddHeedChatCompletion(services =>
        {
            // Heed's chat client over AddHeed's chat pool, with JSON bounds that keep a small model's calls short.
            IChatClient chat = new LlamaChatClient(services.GetRequiredKeyedService<LlamaInference>(HeedServiceKeys.Chat), new LlamaChatClientOptions
            {
                FallbackTemplate = "chatml",
                DefaultMaxOutputTokens = 200,
                JsonLimits = new(MaxStringLength: 40, MaxArrayItems: 4),
            });
            return wrapChat?.Invoke(chat) ?? chat;
        });
        builder.Plugins.AddHeed();
        Kernel kernel = builder.Build();
        _providers.Add((IDisposable)kernel.Services);
        return kernel;
    }

    private static JsonElement Json(FunctionResult result) => JsonDocument.Parse(result.ToString()).RootElement;

    [Fact]
    public void OneCallAddsAPluginWithTheFourTools()
    {
        Kernel kernel = BuildKernel();
        KernelPlugin plugin = Assert.Single(kernel.Plugins);
        Assert.Equal("heed", plugin.Name);
        Assert.Equal(["ask_long_document", "ingest_documents", "rerank_documents", "search_knowledge_base"], plugin.Select(f => f.Name).Order());

        var kernelWithTools = new Kernel();
        kernelWithTools.Plugins.AddHeed(new HeedTools(), "retrieval");
        Assert.Equal(4, kernelWithTools.Plugins["retrieval"].FunctionCount);
    }

    [Fact]
    public async Task RerankDocumentsByNameRanksAsTheRerankerDoes()
    {
        Kernel kernel = BuildKernel();
        FunctionResult result = await kernel.InvokeAsync("heed", "rerank_documents", new KernelArguments
        {
            ["query"] = "What is the pass key of the blue vault?",
            ["documents"] = Documents,
        });
        // The reference: the same reranker called directly, with the settings AddHeed gives it.
        using var reranker = new InContextReranker(fixture.Model, new InContextRerankerOptions
        {
            ContextSize = 2048,
            ContextOptions = new LlamaContextOptions { Threads = 2 },
        });
        IReadOnlyList<RankedDocument> expected = await reranker.RerankAsync("What is the pass key of the blue vault?", Documents);
        JsonElement[] ranked = Json(result).EnumerateArray().ToArray();
        Assert.Equal(expected.Select(d => d.Index), ranked.Select(r => r.GetProperty("index").GetInt32()));
        for (int i = 0; i < ranked.Length; i++)
        {
            Assert.Equal(expected[i].Score, ranked[i].GetProperty("score").GetDouble(), 1e-4 * Math.Max(1, Math.Abs(expected[i].Score)));
            Assert.Equal(Documents[expected[i].Index], ranked[i].GetProperty("text").GetString());
        }
    }

    [Fact]
    public async Task IngestThenSearchByNameFindsTheFile()
    {
        File.WriteAllText(Path.Combine(_folder, "vault.txt"), Fact + " Keep it secret.");
        File.WriteAllText(Path.Combine(_folder, "weather.txt"), Documents[2] + " The rivers rose.");
        Kernel kernel = BuildKernel();
        JsonElement summary = Json(await kernel.InvokeAsync("heed", "ingest_documents", new KernelArguments { ["paths"] = new[] { _folder } }));
        Assert.Equal(2, summary.GetProperty("documents").GetInt32());

        JsonElement hits = Json(await kernel.InvokeAsync("heed", "search_knowledge_base",
            new KernelArguments { ["query"] = "blue vault pass key", ["topK"] = 1 }));
        JsonElement hit = Assert.Single(hits.EnumerateArray().ToArray());
        Assert.EndsWith("vault.txt", hit.GetProperty("source").GetString());

        await Assert.ThrowsAsync<UnauthorizedAccessException>(() =>
            kernel.InvokeAsync("heed", "ingest_documents", new KernelArguments { ["paths"] = new[] { Path.GetTempPath() } }));
    }

    [Fact]
    public async Task AskLongDocumentByNameKeepsTheRetrieversEvidence()
    {
        string document = string.Join(" ", Enumerable.Range(0, 40).Select(i => Documents[i % 3 == 1 ? 0 : i % 3] + $" Note {i}.")) + " " + Fact;
        Kernel kernel = BuildKernel();
        JsonElement answer = Json(await kernel.InvokeAsync("heed", "ask_long_document",
            new KernelArguments { ["question"] = "What is the pass key of the blue vault?", ["text"] = document }));
        using var retriever = new InfiniteRetriever(fixture.Model, new InfiniteRetrieverOptions
        {
            ContextSize = 2048,
            ContextOptions = new LlamaContextOptions { Threads = 2 },
        });
        RetrievalResult expected = await retriever.RetrieveAsync("What is the pass key of the blue vault?", document);
        Assert.Equal(expected.ChunksProcessed, answer.GetProperty("chunksProcessed").GetInt32());
        Assert.Equal(expected.Evidence.Select(e => e.Text), answer.GetProperty("evidence").EnumerateArray().Select(e => e.GetProperty("text").GetString()));
    }

    // One prompt through the kernel; what the model was sent each time, and which tools ran with what result.
    private async Task<(FunctionResult Answer, RecordingChatClient Model, List<(string Name, string Result)> Tools)> RunPrompt(
        string prompt, Func<Kernel, KernelFunction> tool, Func<KernelFunction[], FunctionChoiceBehavior> choice)
    {
        var model = new RecordingChatClient();
        Kernel kernel = BuildKernel(model.Over);
        kernel.Plugins.AddFromFunctions("vault", [KernelFunctionFactory.CreateFromMethod(
            (string owner) => $"The pass key of {owner} is 4321.", "get_pass_key", "Looks up the pass key of a vault's owner.")]);
        var tools = new List<(string Name, string Result)>();
        kernel.FunctionInvocationFilters.Add(new RecordingFilter(tools));
        var settings = new PromptExecutionSettings { FunctionChoiceBehavior = choice([tool(kernel)]) };
        FunctionResult answer = await kernel.InvokePromptAsync(prompt, new KernelArguments(settings));
        return (answer, model, tools);
    }

    private static readonly string RankingPrompt =
        $"Use rerank_documents to find which document answers the question. Question: What is the pass key of the blue vault? Documents: {JsonSerializer.Serialize(Documents)}";

    private static KernelFunction Rerank(Kernel kernel) => kernel.Plugins.GetFunction("heed", "rerank_documents");

    // The tool ran and the model's next request carried its result (the tool's JSON, or SK's
    // error line when the tool refused the model's arguments); the model answered from there.
    private static string AssertTheResultReachedTheAnswer(FunctionResult answer, RecordingChatClient model, List<(string Name, string Result)> tools, string toolName)
    {
        // The model may call again after seeing a result; the first call is checked.
        Assert.NotEmpty(tools);
        (string name, string toolResult) = tools[0];
        Assert.Equal(toolName, name);
        Assert.True(model.Requests.Count >= 2);
        Microsoft.Extensions.AI.FunctionCallContent call = model.Requests[1].SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>().First();
        Microsoft.Extensions.AI.FunctionResultContent fed = model.Requests[1].SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>().First();
        Assert.Equal(call.CallId, fed.CallId);
        string fedText = fed.Result is string text ? text : JsonSerializer.Serialize(fed.Result);
        Assert.True(fedText == toolResult || fedText.StartsWith("Error: Function failed", StringComparison.Ordinal), fedText);
        Assert.False(string.IsNullOrWhiteSpace(answer.ToString()));
        return fedText;
    }

    [Fact]
    public async Task RequiredFunctionCallingRunsTheToolAndItsResultReachesTheAnswer()
    {
        var run = await RunPrompt("What is the pass key of the blue vault?", kernel => kernel.Plugins.GetFunction("vault", "get_pass_key"),
            functions => FunctionChoiceBehavior.Required(functions));
        string fed = AssertTheResultReachedTheAnswer(run.Answer, run.Model, run.Tools, "get_pass_key");
        Assert.Matches("^The pass key of .* is 4321\\.$", fed);
    }

    [Fact]
    public async Task RequiredFunctionCallingRunsAHeedTool()
    {
        var run = await RunPrompt(RankingPrompt, Rerank, functions => FunctionChoiceBehavior.Required(functions));
        AssertTheResultReachedTheAnswer(run.Answer, run.Model, run.Tools, "rerank_documents");
    }

    [Fact]
    public async Task UnderAutoTheShippedModelChoosesToAnswer()
    {
        // Measured, not assumed: under Auto the grammar allows a call or text and heed-tiny's own
        // first token decides. Greedy, it answers this question without calling (the tokens that
        // start a call hold about 0.04% of its first-token probability). The test keeps that figure
        // honest: a change in the prompt or grammar that made it call would show here.
        var run = await RunPrompt("What is the pass key of the blue vault?", kernel => kernel.Plugins.GetFunction("vault", "get_pass_key"),
            functions => FunctionChoiceBehavior.Auto(functions));
        ChatOptions offered = run.Model.Options[0]!;
        Assert.IsType<AutoChatToolMode>(offered.ToolMode);
        Assert.Equal("vault_get_pass_key", Assert.Single(offered.Tools!).Name);
        Assert.Empty(run.Tools);
        Assert.Single(run.Model.Requests);
        Assert.Empty(run.Model.Responses[0].Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.False(string.IsNullOrWhiteSpace(run.Answer.ToString()));
        Assert.NotEqual('{', run.Answer.ToString()![0]);  // plain text, no envelope
    }

    [Fact]
    public async Task AutoFunctionCallingRunsTheToolTheModelChoseAndItsResultReachesTheModel()
    {
        // A test model whose choice is known by construction (Heed.TestModels.ToolChoiceModel): it
        // calls while its context holds no digit and answers once one is there. The tool's result
        // (with a number) is what makes it answer, so the result must reach the model.
        string path = Path.Combine(_folder, "tool-choice.gguf");
        ToolChoiceModel.Write(path, callsUntilADigit: true);
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
        var recorded = new RecordingChatClient();
        IKernelBuilder builder = Kernel.CreateBuilder();
        builder.AddHeedChatCompletion(_ => recorded.Over(new LlamaChatClient(model, new LlamaContextOptions { ContextSize = 1024, Threads = 2 },
            new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 160, JsonLimits = new(MaxStringLength: 12, MaxArrayItems: 2) })));
        Kernel kernel = builder.Build();
        _providers.Add((IDisposable)kernel.Services);
        kernel.Plugins.AddFromFunctions("vault", [KernelFunctionFactory.CreateFromMethod(
            (string owner) => "The pass key of the blue vault is 4321.", "get_pass_key", "Looks up the pass key of a vault's owner.")]);
        var tools = new List<(string Name, string Result)>();
        kernel.FunctionInvocationFilters.Add(new RecordingFilter(tools));

        FunctionResult answer = await kernel.InvokePromptAsync("What is the pass key of the blue vault?",
            new KernelArguments(new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }));

        Assert.IsType<AutoChatToolMode>(recorded.Options[0]!.ToolMode);
        Assert.Equal(("get_pass_key", "The pass key of the blue vault is 4321."), Assert.Single(tools));
        Assert.Equal(2, recorded.Requests.Count);
        Microsoft.Extensions.AI.FunctionResultContent fed = recorded.Requests[1].SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>().Single();
        Assert.Equal("The pass key of the blue vault is 4321.", fed.Result is string text ? text : JsonSerializer.Serialize(fed.Result));
        // The second reply is the model's answer: text, and the kernel's final result.
        ChatResponse second = recorded.Responses[1];
        Assert.Empty(second.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.False(string.IsNullOrWhiteSpace(second.Text));
        Assert.Equal(second.Text, answer.ToString());
    }

    // Records each tool run: its JSON result, or the error it failed with (SK hands that to the model instead).
    private sealed class RecordingFilter(List<(string, string)> invoked) : IFunctionInvocationFilter
    {
        public async Task OnFunctionInvocationAsync(Microsoft.SemanticKernel.FunctionInvocationContext context, Func<Microsoft.SemanticKernel.FunctionInvocationContext, Task> next)
        {
            if (context.Function.PluginName is null) // the prompt itself
            {
                await next(context);
                return;
            }
            try
            {
                await next(context);
                object? value = context.Result.GetValue<object>();
                invoked.Add((context.Function.Name, value as string ?? JsonSerializer.Serialize(value)));
            }
            catch (Exception e)
            {
                invoked.Add((context.Function.Name, e.Message));
                throw;
            }
        }
    }

    /// <summary>Keeps the messages of every request that reaches the model.</summary>
    private sealed class RecordingChatClient
    {
        public List<IList<ChatMessage>> Requests { get; } = [];

        public List<ChatOptions?> Options { get; } = [];

        /// <summary>The model's reply to each request, copied when it arrived (function invocation later puts every turn's messages into the last response).</summary>
        public List<ChatResponse> Responses { get; } = [];

        public IChatClient Over(IChatClient inner) => inner.AsBuilder().Use(async (messages, options, next, cancellationToken) =>
        {
            Requests.Add(messages.ToList());
            Options.Add(options);
            ChatResponse response = await next.GetResponseAsync(messages, options, cancellationToken);
            Responses.Add(new ChatResponse(response.Messages.ToList()) { FinishReason = response.FinishReason });
            return response;
        }, null).Build();
    }
}
