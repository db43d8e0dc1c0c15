using System.Text.Json;
using Heed.AI;
using Heed.Ranking;
using Heed.Retrieval;
using Microsoft.Extensions.AI;

namespace Heed.Tests.AI;

public sealed class HeedToolsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("heed-tools-").FullName;
    private readonly FakeKnowledgeBase _knowledgeBase = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private HeedTools Tools(params string[] roots) => new(new LengthReranker(), new EchoRetriever(), _knowledgeBase, roots);

    private static async Task<JsonElement> Invoke(AIFunction function, Dictionary<string, object?> arguments)
    {
        object? result = await function.InvokeAsync(new AIFunctionArguments(arguments));
        return Assert.IsType<JsonElement>(result);
    }

    [Fact]
    public void ToolsDescribeTheirParameters()
    {
        HeedTools tools = Tools();
        Assert.Equal(["rerank_documents", "search_knowledge_base", "ask_long_document", "ingest_documents"], tools.Functions.Select(f => f.Name));
        JsonElement schema = tools.RerankDocuments.JsonSchema;
        JsonElement properties = schema.GetProperty("properties");
        Assert.Contains("question or search text", properties.GetProperty("query").GetProperty("description").GetString());
        Assert.Equal("array", properties.GetProperty("documents").GetProperty("type").GetString());
        Assert.Equal(["query", "documents"], schema.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.All(tools.Functions, f => Assert.False(string.IsNullOrWhiteSpace(f.Description)));
        Assert.False(tools.IngestDocuments.JsonSchema.GetProperty("properties").TryGetProperty("cancellationToken", out _));
    }

    [Fact]
    public async Task RerankReturnsTheRerankersOrder()
    {
        JsonElement result = await Invoke(Tools().RerankDocuments, new()
        {
            ["query"] = "anything",
            ["documents"] = new[] { "short", "the longest one", "medium ." },
            ["topK"] = 2,
        });
        Assert.Equal([1, 2], result.EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal("the longest one", result[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task RerankChecksItsInput()
    {
        HeedTools tools = Tools();
        await Assert.ThrowsAsync<ArgumentException>(() => tools.RerankDocumentsAsync("q", []));
        await Assert.ThrowsAsync<ArgumentException>(() => tools.RerankDocumentsAsync(" ", ["a"]));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tools.RerankDocumentsAsync("q", ["a"], topK: 0));
        await Assert.ThrowsAsync<ArgumentException>(() => tools.RerankDocumentsAsync("q", new string[HeedTools.MaxRerankDocuments + 1]));
    }

    [Fact]
    public async Task SearchAndIngestGoToTheKnowledgeBase()
    {
        string docs = Directory.CreateDirectory(Path.Combine(_dir, "docs")).FullName;
        File.WriteAllText(Path.Combine(docs, "a.txt"), "the pass key is 4321");
        HeedTools tools = Tools(docs);
        JsonElement ingest = await Invoke(tools.IngestDocuments, new() { ["paths"] = new[] { Path.Combine(docs, "a.txt") } });
        Assert.Equal(1, ingest.GetProperty("documents").GetInt32());
        Assert.Equal([Path.Combine(docs, "a.txt")], _knowledgeBase.Ingested);

        JsonElement hits = await Invoke(tools.SearchKnowledgeBase, new() { ["query"] = "pass key", ["topK"] = 3 });
        Assert.Equal("the pass key is 4321", hits[0].GetProperty("text").GetString());
        Assert.Equal(Path.Combine(docs, "a.txt"), hits[0].GetProperty("source").GetString());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tools.SearchKnowledgeBaseAsync("q", topK: 0));
    }

    [Fact]
    public async Task IngestOutsideTheAllowedRootsIsRefused()
    {
        string docs = Directory.CreateDirectory(Path.Combine(_dir, "docs")).FullName;
        string outside = Directory.CreateDirectory(Path.Combine(_dir, "docs2")).FullName;
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "no");
        HeedTools tools = Tools(docs);
        var e = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => tools.IngestDocumentsAsync([Path.Combine(outside, "secret.txt")]));
        Assert.Contains("outside the allowed roots", e.Message);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => tools.IngestDocumentsAsync([Path.Combine(docs, "..", "docs2", "secret.txt")]));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Tools().IngestDocumentsAsync([Path.Combine(docs, "x.txt")]));
        await Assert.ThrowsAsync<FileNotFoundException>(() => tools.IngestDocumentsAsync([Path.Combine(docs, "missing.txt")]));
        Assert.Empty(_knowledgeBase.Ingested);
    }

    [Fact]
    public async Task AskLongDocumentReadsTextOrAnAllowedFile()
    {
        string docs = Directory.CreateDirectory(Path.Combine(_dir, "docs")).FullName;
        File.WriteAllText(Path.Combine(docs, "long.txt"), "first . second .");
        HeedTools tools = Tools(docs);
        LongDocumentAnswer fromText = await tools.AskLongDocumentAsync("which ?", text: "alpha . beta .");
        Assert.Equal("alpha . beta .", fromText.Answer);
        LongDocumentAnswer fromFile = await tools.AskLongDocumentAsync("which ?", path: Path.Combine(docs, "long.txt"));
        Assert.Equal("first . second .", fromFile.Answer);
        Assert.Equal(1, fromFile.ChunksProcessed);
        await Assert.ThrowsAsync<ArgumentException>(() => tools.AskLongDocumentAsync("which ?"));
        await Assert.ThrowsAsync<ArgumentException>(() => tools.AskLongDocumentAsync("which ?", "t", Path.Combine(docs, "long.txt")));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => tools.AskLongDocumentAsync("which ?", path: "/etc/passwd"));
    }

    [Fact]
    public async Task MissingServicesAreNamed()
    {
        var tools = new HeedTools();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => tools.RerankDocumentsAsync("q", ["a"]));
        Assert.Contains("IDocumentReranker", e.Message);
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => tools.SearchKnowledgeBaseAsync("q"));
        Assert.Contains("IKnowledgeBase", e.Message);
    }

    private sealed class LengthReranker : IDocumentReranker
    {
        public Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
            CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<RankedDocument>>(documents.Select((d, i) => new RankedDocument(i, d, d.Length))
                .OrderByDescending(r => r.Score).Take(topK ?? documents.Count).ToArray());
    }

    private sealed class EchoRetriever : ILongContextRetriever
    {
        public Task<RetrievalResult> RetrieveAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public async Task<AnswerResult> AnswerAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
            CancellationToken cancellationToken = default)
        {
            string text = await document.ReadToEndAsync(cancellationToken);
            return new AnswerResult(text, new RetrievalResult([new Evidence(text, 1, 0, text.Length)], 1, text.Length));
        }
    }

    private sealed class FakeKnowledgeBase : IKnowledgeBase
    {
        public List<string> Ingested { get; } = [];

        public Task<IReadOnlyList<KnowledgeBaseHit>> SearchAsync(string query, int topK = 5, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<KnowledgeBaseHit>>(Ingested.Select(p => new KnowledgeBaseHit(File.ReadAllText(p), p, 1)).Take(topK).ToArray());

        public Task<IngestSummary> IngestAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken = default)
        {
            Ingested.AddRange(paths);
            return Task.FromResult(new IngestSummary(paths.Count, paths.Count));
        }
    }
}
