namespace Heed.AI;

/// <summary>
/// What the search_knowledge_base and ingest_documents tools need from a knowledge base
/// (Heed's RAG pipeline, or any store an app brings).
/// </summary>
public interface IKnowledgeBase
{
    /// <summary>The passages that best match a query, best first.</summary>
    /// <param name="query">What to look for; not empty.</param>
    /// <param name="topK">Most passages to return, at least 1.</param>
    /// <param name="cancellationToken">Stops the search.</param>
    Task<IReadOnlyList<KnowledgeBaseHit>> SearchAsync(string query, int topK = 5, CancellationToken cancellationToken = default);

    /// <summary>Reads folders (every supported file inside) or files, as the knowledge base supports, into it.</summary>
    /// <param name="paths">Full paths the caller has already checked.</param>
    /// <param name="cancellationToken">Stops between files.</param>
    Task<IngestSummary> IngestAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken = default);
}

/// <summary>One passage found in the knowledge base.</summary>
/// <param name="Text">The passage.</param>
/// <param name="Source">The file (or other source) it comes from.</param>
/// <param name="Score">Higher is a better match; comparable within one search.</param>
public sealed record KnowledgeBaseHit(string Text, string Source, double Score);

/// <summary>What an ingest added.</summary>
/// <param name="Documents">Files read.</param>
/// <param name="Chunks">Passages indexed.</param>
/// <param name="Summary">One line per ingest for people; null when the knowledge base gives none.</param>
public sealed record IngestSummary(int Documents, int Chunks, string? Summary = null);
