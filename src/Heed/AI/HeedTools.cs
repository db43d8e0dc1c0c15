using System.ComponentModel;
using System.Diagnostics;
using System.Reflection;
using Heed.Ranking;
using Heed.Retrieval;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.AI;

/// <summary>
/// Heed's retrieval features as <see cref="AIFunction"/>s for chat clients, agents, Semantic
/// Kernel (<c>AsKernelFunction()</c>) and the MCP server: <c>rerank_documents</c>,
/// <c>search_knowledge_base</c>, <c>ask_long_document</c> and <c>ingest_documents</c>.
/// Tools read files only under <see cref="AllowedRoots"/>.
/// </summary>
public sealed class HeedTools
{
    /// <summary>Most documents one rerank_documents call takes.</summary>
    public const int MaxRerankDocuments = 500;

    /// <summary>Most passages one search_knowledge_base call returns.</summary>
    public const int MaxSearchResults = 50;

    private readonly IDocumentReranker? _reranker;
    private readonly ILongContextRetriever? _retriever;
    private readonly IKnowledgeBase? _knowledgeBase;
    private readonly ILogger _logger;

    /// <summary>Tools over whichever services are given; a tool whose service is missing says so when called.</summary>
    /// <param name="reranker">For rerank_documents.</param>
    /// <param name="retriever">For ask_long_document.</param>
    /// <param name="knowledgeBase">For search_knowledge_base and ingest_documents.</param>
    /// <param name="allowedRoots">Folders ingest_documents and ask_long_document may read; null or empty: none.</param>
    /// <param name="logger">Receives one line per call and every refusal.</param>
    public HeedTools(IDocumentReranker? reranker = null, ILongContextRetriever? retriever = null, IKnowledgeBase? knowledgeBase = null,
        IEnumerable<string>? allowedRoots = null, ILogger? logger = null)
    {
        // AddHeed hands over an instrumented reranker (deferred); anything else is measured here.
        _reranker = reranker is null or TelemetryDocumentReranker or Hosting.DeferredDocumentReranker
            ? reranker
            : new TelemetryDocumentReranker(reranker);
        _retriever = retriever;
        _knowledgeBase = knowledgeBase;
        AllowedRoots = new AllowedRoots(allowedRoots ?? []);
        _logger = logger ?? NullLogger.Instance;
        RerankDocuments = Create(nameof(RerankDocumentsAsync), "rerank_documents",
            "Ranks documents by relevance to a query using the local model's attention (in-context re-ranking). Returns the documents best first with scores.");
        SearchKnowledgeBase = Create(nameof(SearchKnowledgeBaseAsync), "search_knowledge_base",
            "Searches the ingested knowledge base for passages relevant to a query. Returns passages with their source file and score.");
        AskLongDocument = Create(nameof(AskLongDocumentAsync), "ask_long_document",
            "Answers a question about a document that may be far longer than the model's context, by reading it chunk by chunk and keeping the sentences the model attends to. Give the document as text or as a file path under an allowed folder.");
        IngestDocuments = Create(nameof(IngestDocumentsAsync), "ingest_documents",
            "Adds folders (every .txt, .md and .html file inside, recursively) to the knowledge base so search_knowledge_base can find them. Only paths under the allowed folders are read.");
        Functions = [RerankDocuments, SearchKnowledgeBase, AskLongDocument, IngestDocuments];
    }

    /// <summary>The folders the tools may read.</summary>
    public AllowedRoots AllowedRoots { get; }

    /// <summary>All four tools.</summary>
    public IReadOnlyList<AIFunction> Functions { get; }

    /// <summary>rerank_documents.</summary>
    public AIFunction RerankDocuments { get; }

    /// <summary>search_knowledge_base.</summary>
    public AIFunction SearchKnowledgeBase { get; }

    /// <summary>ask_long_document.</summary>
    public AIFunction AskLongDocument { get; }

    /// <summary>ingest_documents.</summary>
    public AIFunction IngestDocuments { get; }

    private AIFunction Create(string method, string name, string description) =>
        AIFunctionFactory.Create(typeof(HeedTools).GetMethod(method, BindingFlags.Instance | BindingFlags.Public)!, this,
            new AIFunctionFactoryOptions { Name = name, Description = description });

    /// <summary>The body of rerank_documents.</summary>
    public async Task<IReadOnlyList<RankedDocumentResult>> RerankDocumentsAsync(
        [Description("The question or search text to rank the documents against.")] string query,
        [Description("The candidate documents, as plain text.")] string[] documents,
        [Description("Return only the best k documents; omit for all.")] int? topK = null,
        CancellationToken cancellationToken = default)
    {
        using Activity? activity = StartTool("rerank_documents");
        ArgumentException.ThrowIfNullOrWhiteSpace(query);
        if (documents is null || documents.Length == 0)
        {
            throw new ArgumentException("documents is empty; pass at least one document to rank.", nameof(documents));
        }
        if (documents.Length > MaxRerankDocuments)
        {
            throw new ArgumentException($"{documents.Length} documents are too many for one call; pass at most {MaxRerankDocuments}.", nameof(documents));
        }
        if (topK is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be at least 1 (or omitted for all documents).");
        }
        IDocumentReranker reranker = _reranker ?? throw Missing("rerank_documents", "an IDocumentReranker (Heed.Ranking.InContextReranker)");
        IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, documents, topK, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("rerank_documents ranked {Count} documents.", documents.Length);
        return ranked.Select(r => new RankedDocumentResult(r.Index, r.Score, r.Text)).ToArray();
    }

    /// <summary>The body of search_knowledge_base.</summary>
    public async Task<IReadOnlyList<KnowledgeBaseHit>> SearchKnowledgeBaseAsync(
        [Description("What to look for in the knowledge base.")] string query,
        [Description("Most passages to return (1 to 50).")] int topK = 5,
        CancellationToken cancellationToken = default)
    {
        using Activity? activity = StartTool("search_knowledge_base");
        ArgumentException.ThrowIfNullOrWhiteSpace(query);
        if (topK is < 1 or > MaxSearchResults)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"topK must be between 1 and {MaxSearchResults}.");
        }
        IKnowledgeBase knowledgeBase = _knowledgeBase ?? throw Missing("search_knowledge_base", "a knowledge base (IKnowledgeBase)");
        IReadOnlyList<KnowledgeBaseHit> hits = await knowledgeBase.SearchAsync(query, topK, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("search_knowledge_base found {Count} passages.", hits.Count);
        return hits;
    }

    /// <summary>The body of ask_long_document.</summary>
    public async Task<LongDocumentAnswer> AskLongDocumentAsync(
        [Description("The question to answer from the document.")] string question,
        [Description("The document's text; give this or path.")] string? text = null,
        [Description("A file to read instead of text; it must lie under an allowed folder.")] string? path = null,
        CancellationToken cancellationToken = default)
    {
        using Activity? activity = StartTool("ask_long_document");
        ArgumentException.ThrowIfNullOrWhiteSpace(question);
        if (string.IsNullOrEmpty(text) == string.IsNullOrEmpty(path))
        {
            throw new ArgumentException("Give exactly one of text (the document itself) or path (a file under an allowed folder).");
        }
        ILongContextRetriever retriever = _retriever ?? throw Missing("ask_long_document", "an ILongContextRetriever (Heed.Retrieval.InfiniteRetriever)");
        using TextReader reader = text is not null ? new StringReader(text) : OpenAllowedFile(path!);
        AnswerResult result = await retriever.AnswerAsync(question, reader, null, cancellationToken).ConfigureAwait(false);
        return new LongDocumentAnswer(result.Answer,
            result.Retrieval.Evidence.Select(e => new EvidenceResult(e.Text, e.Score, e.Offset)).ToArray(),
            result.Retrieval.ChunksProcessed);
    }

    /// <summary>The body of ingest_documents.</summary>
    public async Task<IngestSummary> IngestDocumentsAsync(
        [Description("Folders to index; each must lie under an allowed folder.")] string[] paths,
        CancellationToken cancellationToken = default)
    {
        using Activity? activity = StartTool("ingest_documents");
        if (paths is null || paths.Length == 0)
        {
            throw new ArgumentException("paths is empty; pass at least one file or folder.", nameof(paths));
        }
        var resolved = new List<string>(paths.Length);
        foreach (string path in paths)
        {
            if (string.IsNullOrWhiteSpace(path))
            {
                throw new ArgumentException("paths has an empty entry.", nameof(paths));
            }
            string real = ResolveAllowed(path, "ingest_documents");
            if (!File.Exists(real) && !Directory.Exists(real))
            {
                throw new FileNotFoundException($"'{path}' does not exist; pass existing files or folders.", path);
            }
            resolved.Add(real);
        }
        IKnowledgeBase knowledgeBase = _knowledgeBase ?? throw Missing("ingest_documents", "a knowledge base (IKnowledgeBase)");
        IngestSummary summary = await knowledgeBase.IngestAsync(resolved, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("ingest_documents added {Documents} documents in {Chunks} chunks.", summary.Documents, summary.Chunks);
        return summary;
    }

    private TextReader OpenAllowedFile(string path)
    {
        string real = ResolveAllowed(path, "ask_long_document");
        if (!File.Exists(real))
        {
            throw new FileNotFoundException($"'{path}' is not an existing file.", path);
        }
        return File.OpenText(real);
    }

    private string ResolveAllowed(string path, string tool)
    {
        try
        {
            return AllowedRoots.Resolve(path);
        }
        catch (UnauthorizedAccessException e)
        {
            _logger.LogWarning("{Tool} refused a path: {Reason}", tool, e.Message);
            throw;
        }
    }

    private static Activity? StartTool(string name)
    {
        Activity? activity = HeedTelemetry.ActivitySource.StartActivity("heed.tool." + name);
        activity?.SetTag("gen_ai.tool.name", name);
        return activity;
    }

    private static InvalidOperationException Missing(string tool, string what) =>
        new($"{tool} is not available: no {what} is configured. Register one in DI (AddHeed registers those Heed has) or pass it to HeedTools.");
}

/// <summary>A document as rerank_documents returns it.</summary>
/// <param name="Index">Its position in the list that was passed.</param>
/// <param name="Score">Relevance; higher is better, comparable within one call.</param>
/// <param name="Text">The document.</param>
public sealed record RankedDocumentResult(int Index, double Score, string Text);

/// <summary>What ask_long_document returns.</summary>
/// <param name="Answer">The generated answer; null when nothing in the document stood out as an answer (not found).</param>
/// <param name="Evidence">The sentences it was drawn from.</param>
/// <param name="ChunksProcessed">Chunks of the document read.</param>
public sealed record LongDocumentAnswer(string? Answer, IReadOnlyList<EvidenceResult> Evidence, int ChunksProcessed);

/// <summary>A sentence of evidence in a <see cref="LongDocumentAnswer"/>.</summary>
/// <param name="Text">The sentence.</param>
/// <param name="Score">Attention-based relevance.</param>
/// <param name="Offset">Character offset in the document.</param>
public sealed record EvidenceResult(string Text, double Score, long Offset);
