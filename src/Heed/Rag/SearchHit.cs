using Heed.Text;

namespace Heed.Rag;

/// <summary>A chunk found by <see cref="RagPipeline.SearchAsync"/>.</summary>
/// <param name="Rank">Its place in the results, from 1.</param>
/// <param name="Chunk">The passage, with its source path, offsets and ordinal.</param>
/// <param name="Score">
/// What ordered the results: the reranker's score when a reranker is set, else the reciprocal-rank-fusion score
/// when dense vectors took part, else the BM25 score. Comparable within one search only.
/// </param>
/// <param name="LexicalScore">Its BM25 score, or null when BM25 did not find it.</param>
/// <param name="DenseSimilarity">Its cosine similarity to the query embedding, or null without one.</param>
/// <param name="RerankScore">The reranker's score, or null without a reranker.</param>
public sealed record SearchHit(int Rank, TextChunk Chunk, double Score, double? LexicalScore, double? DenseSimilarity, double? RerankScore)
{
    /// <summary>The file the chunk comes from.</summary>
    public string SourcePath => Chunk.SourcePath;
}
