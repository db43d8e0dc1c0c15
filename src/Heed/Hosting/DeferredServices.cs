using Heed.AI;
using Heed.Ranking;
using Heed.Retrieval;
using Microsoft.Extensions.DependencyInjection;

namespace Heed.Hosting;

// Services resolved on first use, so that HeedTools (and the MCP server listing its tools) does
// not load the model or build attention contexts until a tool is actually called.
internal sealed class DeferredDocumentReranker(IServiceProvider services) : IDocumentReranker
{
    private readonly Lazy<IDocumentReranker> _inner = new(services.GetRequiredService<IDocumentReranker>);

    public Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default) => _inner.Value.RerankAsync(query, documents, topK, cancellationToken);
}

internal sealed class DeferredLongContextRetriever(IServiceProvider services) : ILongContextRetriever
{
    private readonly Lazy<ILongContextRetriever> _inner = new(services.GetRequiredService<ILongContextRetriever>);

    public Task<RetrievalResult> RetrieveAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default) => _inner.Value.RetrieveAsync(question, document, progress, cancellationToken);

    public Task<AnswerResult> AnswerAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default) => _inner.Value.AnswerAsync(question, document, progress, cancellationToken);
}

internal sealed class DeferredKnowledgeBase(IServiceProvider services) : IKnowledgeBase
{
    private readonly Lazy<IKnowledgeBase> _inner = new(services.GetRequiredService<IKnowledgeBase>);

    public Task<IReadOnlyList<KnowledgeBaseHit>> SearchAsync(string query, int topK = 5, CancellationToken cancellationToken = default) =>
        _inner.Value.SearchAsync(query, topK, cancellationToken);

    public Task<IngestSummary> IngestAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken = default) =>
        _inner.Value.IngestAsync(paths, cancellationToken);
}
