using System.Numerics.Tensors;

namespace Heed.Search;

/// <summary>Ranks stored vectors by cosine similarity to a query vector (exact, SIMD via TensorPrimitives).</summary>
internal static class DenseRanking
{
    /// <summary>The best <paramref name="topK"/> (index, cosine) pairs; vectors that are null, of another size or zero are left out.</summary>
    public static List<(int Index, double Similarity)> Rank(ReadOnlySpan<float> query, IReadOnlyList<float[]?> vectors, int topK)
    {
        var scored = new List<(int Index, double Similarity)>();
        for (int i = 0; i < vectors.Count; i++)
        {
            float[]? v = vectors[i];
            if (v is null || v.Length != query.Length)
            {
                continue;
            }
            float similarity = TensorPrimitives.CosineSimilarity(query, v);
            if (float.IsFinite(similarity))
            {
                scored.Add((i, similarity));
            }
        }
        scored.Sort((x, y) => y.Similarity != x.Similarity ? y.Similarity.CompareTo(x.Similarity) : x.Index.CompareTo(y.Index));
        if (scored.Count > topK)
        {
            scored.RemoveRange(topK, scored.Count - topK);
        }
        return scored;
    }
}
