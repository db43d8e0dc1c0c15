using System.Numerics.Tensors;

namespace Heed.Search;

/// <summary>Ranks stored vectors by cosine similarity to a query vector (exact, SIMD via TensorPrimitives).</summary>
internal static class DenseRanking
{
    /// <summary>
    /// The best <paramref name="topK"/> (index, cosine) pairs; vectors that are null, of another size or zero are left out.
    /// The cosine is computed as pgvector computes it (float sums, then dot / sqrt(|a|²·|b|²) in double) and ranked by
    /// 1 − cosine, pgvector's cosine distance, ties by index: a PostgreSQL store orders the same vectors the same way.
    /// </summary>
    public static List<(int Index, double Similarity)> Rank(ReadOnlySpan<float> query, IReadOnlyList<float[]?> vectors, int topK)
    {
        var scored = new List<(int Index, double Similarity, double Distance)>();
        double queryNorm = TensorPrimitives.SumOfSquares(query);
        for (int i = 0; i < vectors.Count; i++)
        {
            float[]? v = vectors[i];
            if (v is null || v.Length != query.Length)
            {
                continue;
            }
            double similarity = TensorPrimitives.Dot(query, v) / Math.Sqrt(queryNorm * TensorPrimitives.SumOfSquares<float>(v));
            if (double.IsFinite(similarity))
            {
                similarity = Math.Clamp(similarity, -1, 1);
                scored.Add((i, similarity, 1 - similarity));
            }
        }
        scored.Sort((x, y) => x.Distance != y.Distance ? x.Distance.CompareTo(y.Distance) : x.Index.CompareTo(y.Index));
        if (scored.Count > topK)
        {
            scored.RemoveRange(topK, scored.Count - topK);
        }
        return scored.Select(s => (s.Index, s.Similarity)).ToList();
    }
}
