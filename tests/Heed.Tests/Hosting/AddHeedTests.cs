using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Heed.Ranking;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Heed.Tests.Hosting;

[Collection(TinyModelCollection.Name)]
public sealed class AddHeedTests(TinyModelFixture fixture)
{
    private ServiceProvider Build(Action<HeedOptions>? more = null) => new ServiceCollection()
        .AddHeed(o =>
        {
            o.ModelPath = fixture.ModelPath;
            o.GpuLayers = 0;
            o.ContextSize = 256;
            o.PoolSize = 2;
            o.Threads = 2;
            o.FallbackChatTemplate = "chatml";
            o.DefaultMaxOutputTokens = 4;
            more?.Invoke(o);
        })
        .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

    private static string StartupError(ServiceProvider services) =>
        Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate()).Message;

    [Fact]
    public async Task RegistersAWorkingChatClientEmbeddingsAndTools()
    {
        await using ServiceProvider services = Build();
        services.GetRequiredService<IStartupValidator>().Validate();
        foreach (IHostedService hosted in services.GetServices<IHostedService>())
        {
            await hosted.StartAsync(default);
        }
        IChatClient chat = services.GetRequiredService<IChatClient>();
        ChatResponse response = await chat.GetResponseAsync("what is the pass key ?");
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, 4);

        var embeddings = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        Embedding<float> vector = (await embeddings.GenerateAsync(["the pass key"]))[0];
        Assert.Equal(Heed.TestModels.TinyLlama.EmbeddingSize, vector.Vector.Length);

        HeedTools tools = services.GetRequiredService<HeedTools>();
        Assert.Equal(["rerank_documents", "search_knowledge_base", "ask_long_document", "ingest_documents"], tools.Functions.Select(f => f.Name));
        Assert.Same(services.GetRequiredService<LlamaModel>(), services.GetHeedModel());
        Assert.Same(services.GetRequiredService<IChatClient>(), chat);
    }

    [Fact]
    public async Task RegistersAPoolOfInContextRerankers()
    {
        await using ServiceProvider services = Build();
        IDocumentReranker reranker = services.GetRequiredService<IDocumentReranker>();
        var pool = Assert.IsType<InContextRerankerPool>(Assert.IsType<TelemetryDocumentReranker>(reranker).Inner);
        Assert.Equal(services.GetRequiredService<IOptions<HeedOptions>>().Value.PoolSize, pool.Size);
    }

    [Fact]
    public async Task KnowledgeBaseToolsIngestAndSearchThroughTheRagPipeline()
    {
        string docs = Directory.CreateDirectory(Path.Combine(fixture.Directory, "kb-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(docs, "keys.txt"), "the pass key is hidden in the text . remember the pass key .");
        File.WriteAllText(Path.Combine(docs, "fox.md"), "the quick brown fox jumps over the lazy dog .");
        string index = Path.Combine(docs + "-index", "kb.heed");
        Directory.CreateDirectory(Path.GetDirectoryName(index)!);
        await using ServiceProvider services = Build(o =>
        {
            o.AllowedRoots = [docs];
            o.IndexPath = index;
        });
        HeedTools tools = services.GetRequiredService<HeedTools>();
        IngestSummary summary = await tools.IngestDocumentsAsync([docs]);
        Assert.Equal(2, summary.Documents);
        Assert.True(summary.Chunks >= 2);
        Assert.True(File.Exists(index), "the index is saved at IndexPath");
        IReadOnlyList<KnowledgeBaseHit> hits = await tools.SearchKnowledgeBaseAsync("pass key", topK: 2);
        Assert.Contains(hits, h => h.Source == Path.Combine(docs, "keys.txt") && h.Text.Contains("pass key"));
        Assert.IsType<Heed.Retrieval.InfiniteRetriever>(services.GetRequiredService<Heed.Retrieval.ILongContextRetriever>());
        string longText = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog . ", 40)) +
                          "the pass key is hidden in the text . " + string.Concat(Enumerable.Repeat("a model reads the documents . ", 40));
        LongDocumentAnswer answer = await tools.AskLongDocumentAsync("what is the pass key ?", text: longText);
        Assert.True(answer.ChunksProcessed > 1, "the text is longer than one chunk");
        Assert.NotEmpty(answer.Evidence);
        Assert.All(answer.Evidence, e => Assert.Equal(e.Text, longText.Substring((int)e.Offset, e.Text.Length)));
        await Assert.ThrowsAsync<ArgumentException>(() => tools.IngestDocumentsAsync([Path.Combine(docs, "keys.txt")]));
    }

    [Fact]
    public async Task AnAppsOwnServicesWin()
    {
        var mine = new FakeReranker();
        await using ServiceProvider services = new ServiceCollection()
            .AddSingleton<IDocumentReranker>(mine)
            .AddHeed(o => o.ModelPath = fixture.ModelPath)
            .BuildServiceProvider();
        Assert.Same(mine, services.GetRequiredService<IDocumentReranker>());
    }

    [Fact]
    public async Task MissingModelFailsTheStartNamingTheSetting()
    {
        await using ServiceProvider services = Build(o => o.ModelPath = Path.Combine(fixture.Directory, "missing.gguf"));
        string message = StartupError(services);
        Assert.Contains("Heed:ModelPath", message);
        Assert.Contains("missing.gguf", message);
    }

    [Fact]
    public async Task EveryBadSettingIsNamed()
    {
        await using ServiceProvider services = Build(o =>
        {
            o.PoolSize = 0;
            o.ContextSize = 3;
            o.GpuLayers = -2;
            o.RequestTimeout = TimeSpan.Zero;
            o.MaxQueuedRequests = -1;
            o.AllowedRoots = [Path.Combine(fixture.Directory, "no-such-folder")];
        });
        string message = StartupError(services);
        foreach (string setting in new[] { "PoolSize", "ContextSize", "GpuLayers", "RequestTimeout", "MaxQueuedRequests", "AllowedRoots" })
        {
            Assert.Contains("Heed:" + setting, message);
        }
        Assert.DoesNotContain("Heed:ModelPath", message);
    }

    [Fact]
    public async Task EmptyModelPathIsNamed()
    {
        await using ServiceProvider services = new ServiceCollection().AddHeed(_ => { }).BuildServiceProvider();
        Assert.Contains("Heed:ModelPath is not set", StartupError(services));
    }

    private sealed class FakeReranker : IDocumentReranker
    {
        public Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
            CancellationToken cancellationToken = default) => Task.FromResult<IReadOnlyList<RankedDocument>>([]);
    }
}
