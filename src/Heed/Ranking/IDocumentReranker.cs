namespace Heed.Ranking;

/// <summary>Orders documents by how relevant they are to a query.</summary>
public interface IDocumentReranker
{
    /// <summary>
    /// Ranks <paramref name="documents"/> for <paramref name="query"/>, best first.
    /// </summary>
    /// <param name="query">The question or search text; not empty.</param>
    /// <param name="documents">Candidates; at least one, none empty or only whitespace.</param>
    /// <param name="topK">Return only the best k (null: all).</param>
    /// <param name="cancellationToken">Stops the work between model calls.</param>
    Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default);
}

/// <summary>A document with its relevance score.</summary>
/// <param name="Index">Its position in the list given to the reranker.</param>
/// <param name="Text">The document.</param>
/// <param name="Score">Higher is more relevant; comparable within one call.</param>
public sealed record RankedDocument(int Index, string Text, double Score);
