namespace Heed.Search;

/// <summary>A document found by <see cref="Bm25Index.Search"/>.</summary>
/// <param name="Document">Its position in the indexed list.</param>
/// <param name="Score">Its BM25 score (above 0).</param>
public readonly record struct Bm25Hit(int Document, double Score);
