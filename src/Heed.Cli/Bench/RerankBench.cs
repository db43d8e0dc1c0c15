using System.Diagnostics;
using System.Numerics.Tensors;
using Heed.AI;
using Heed.Llama;
using Heed.Ranking;
using Heed.Search;
using Microsoft.Extensions.AI;

namespace Heed.Cli.Bench;

/// <summary>
/// Ranks each held-out re-ranking case with every method, in one run over one model: ICR (Heed's
/// scoring and the authors' convention), BM25, dense embeddings (the model's own, mean-pooled,
/// cosine), generative listwise ranking and a random order.
/// </summary>
internal sealed class RerankBench : IDisposable
{
    public const string Icr = "ICR", IcrPaper = "ICR (paper convention)", Bm25 = "BM25", Dense = "dense (model embeddings)",
        Listwise = "listwise generation", RandomOrder = "random";

    public static readonly string[] Methods = [Icr, IcrPaper, Bm25, Dense, Listwise, RandomOrder];

    private readonly InContextReranker _icr, _icrPaper;
    private readonly LlamaEmbeddingGenerator _embeddings;
    private readonly ListwiseReranker _listwise;
    private readonly Random _random;

    public RerankBench(LlamaModel model, int contextSize, int seed)
    {
        _icr = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize });
        _icrPaper = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize, UsePaperConvention = true });
        _embeddings = new LlamaEmbeddingGenerator(model, contextSize);
        _listwise = new ListwiseReranker(model, contextSize);
        _random = new Random(seed);
    }

    /// <summary>A method's ranking of one case (passage indices, best first) and how long it took.</summary>
    public sealed record Ranking(string Method, int[] Order, double Milliseconds);

    public async Task<IReadOnlyList<Ranking>> RankAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken)
    {
        var rankings = new List<Ranking>();
        var clock = Stopwatch.StartNew();
        Add(Icr, (await _icr.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
        Add(IcrPaper, (await _icrPaper.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
        Add(Bm25, new Bm25Index(passages).Search(query, passages.Count).Select(h => h.Document));
        Add(Dense, await DenseOrderAsync(query, passages, cancellationToken));
        Add(Listwise, await _listwise.RankAsync(query, passages, cancellationToken));
        Add(RandomOrder, Enumerable.Range(0, passages.Count).OrderBy(_ => _random.Next()));
        return rankings;

        void Add(string method, IEnumerable<int> order)
        {
            // Passages a method leaves out (BM25 skips those sharing no word) follow in input order.
            int[] ranked = order.ToArray();
            rankings.Add(new Ranking(method, [.. ranked, .. Enumerable.Range(0, passages.Count).Except(ranked)], clock.Elapsed.TotalMilliseconds));
            clock.Restart();
        }
    }

    private async Task<IEnumerable<int>> DenseOrderAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken)
    {
        GeneratedEmbeddings<Embedding<float>> vectors = await _embeddings.GenerateAsync([query, .. passages], null, cancellationToken);
        float[] q = vectors[0].Vector.ToArray();
        return Enumerable.Range(0, passages.Count)
            .Select(i => (Index: i, Similarity: TensorPrimitives.CosineSimilarity(q, vectors[i + 1].Vector.Span)))
            .OrderByDescending(x => x.Similarity).ThenBy(x => x.Index).Select(x => x.Index);
    }

    /// <summary>nDCG@k with one relevant passage: 1/log2(rank + 1) if it is within the top k, else 0.</summary>
    public static double Ndcg(IReadOnlyList<int> ranking, int relevant, int k)
    {
        for (int i = 0; i < Math.Min(k, ranking.Count); i++)
        {
            if (ranking[i] == relevant)
            {
                return 1.0 / Math.Log2(i + 2);
            }
        }
        return 0;
    }

    public void Dispose()
    {
        _icr.Dispose();
        _icrPaper.Dispose();
        _embeddings.Dispose();
        _listwise.Dispose();
    }
}
