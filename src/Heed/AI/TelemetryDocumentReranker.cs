using System.Diagnostics;
using Heed.Ranking;

namespace Heed.AI;

/// <summary>Wraps a reranker with a "heed.rerank" span and the heed.rerank.duration histogram.</summary>
public sealed class TelemetryDocumentReranker(IDocumentReranker inner) : IDocumentReranker
{
    private readonly IDocumentReranker _inner = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <summary>The wrapped reranker.</summary>
    public IDocumentReranker Inner => _inner;

    /// <inheritdoc />
    public async Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default)
    {
        using Activity? activity = HeedTelemetry.ActivitySource.StartActivity("heed.rerank");
        activity?.SetTag("heed.rerank.documents", documents?.Count);
        long start = Stopwatch.GetTimestamp();
        string outcome = "ok";
        try
        {
            return await _inner.RerankAsync(query, documents!, topK, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = e is OperationCanceledException ? "cancelled" : "error";
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            HeedTelemetry.RerankDuration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds,
                new KeyValuePair<string, object?>("outcome", outcome));
        }
    }
}
