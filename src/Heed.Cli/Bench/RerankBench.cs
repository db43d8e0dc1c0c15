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
/// scoring and the authors' convention, and without document numbers), block ICR over cached
/// documents, BM25, dense embeddings (the model's own, mean-pooled, cosine), generative listwise
/// ranking and a random order. <see cref="LatencyAsync"/> times full ICR, block ICR, listwise
/// generation and BM25 on longer candidate lists.
/// </summary>
internal sealed class RerankBench : IDisposable
{
    public const string Icr = "ICR", IcrPaper = "ICR (paper convention)", IcrUnnumbered = "ICR, documents unnumbered [*]",
        BlockIcr = "block ICR (cached documents, [*])", Bm25 = "BM25", Dense = "dense (model embeddings)",
        Listwise = "listwise generation", RandomOrder = "random";

    public static readonly string[] Methods = [Icr, IcrPaper, IcrUnnumbered, BlockIcr, Bm25, Dense, Listwise, RandomOrder];

    private readonly InContextReranker _icr, _icrPaper, _icrUnnumbered;
    private readonly CachedDocumentReranker _block;
    private readonly LlamaEmbeddingGenerator _embeddings;
    private readonly ListwiseReranker _listwise;
    private readonly Random _random;

    public RerankBench(LlamaModel model, int contextSize, int seed)
    {
        _icr = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize });
        _icrPaper = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize, UsePaperConvention = true });
        _icrUnnumbered = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize, NumberDocuments = false });
        _block = new CachedDocumentReranker(model, new CachedDocumentRerankerOptions
        {
            Ranking = new InContextRerankerOptions { ContextSize = contextSize, NumberDocuments = false },
            MaxCachedDocuments = 128,
        });
        _embeddings = new LlamaEmbeddingGenerator(model, contextSize);
        _listwise = new ListwiseReranker(model, contextSize);
        _random = new Random(seed);
    }

    /// <summary>A method's ranking of one case (passage indices, best first) and how long it took.</summary>
    public sealed record Ranking(string Method, int[] Order, double Milliseconds);

    /// <summary>Milliseconds spent caching documents for block ICR (before its timed queries, not in their times).</summary>
    public double BlockCacheMilliseconds { get; private set; }

    public async Task<IReadOnlyList<Ranking>> RankAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken)
    {
        var rankings = new List<Ranking>();
        var clock = Stopwatch.StartNew();
        Add(Icr, (await _icr.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
        Add(IcrPaper, (await _icrPaper.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
        Add(IcrUnnumbered, (await _icrUnnumbered.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
        await _block.CacheDocumentsAsync(passages, cancellationToken);
        BlockCacheMilliseconds += clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        Add(BlockIcr, (await _block.RerankAsync(query, passages, null, cancellationToken)).Select(r => r.Index));
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

    /// <summary>One method's figures on candidate lists of one size.</summary>
    public sealed record LatencyRow(int Documents, string Method, double MsPerQuery, double Ndcg10, double Top1, double CacheMsPerQuery);

    /// <summary>
    /// Per query, on lists of <paramref name="sizes"/> candidates (each question's passages, then
    /// other questions' passages until the size is reached, the answer among them): full ICR and block
    /// ICR on the same window size and packing (windows and their merge are the same code), block
    /// ICR with the list cached beforehand (that time is reported apart, not in the query's),
    /// listwise generation in sliding windows of 20 (step 10, back to front, as RankGPT), and BM25.
    /// </summary>
    public async Task<IReadOnlyList<LatencyRow>> LatencyAsync(IReadOnlyList<(string Query, IReadOnlyList<string> Passages, int Relevant)> cases,
        IReadOnlyList<string> pool, int[] sizes, CancellationToken cancellationToken)
    {
        var rows = new List<LatencyRow>();
        foreach (int size in sizes)
        {
            var totals = new Dictionary<string, (double Ms, double Ndcg, int Top1, double CacheMs)>();
            foreach ((string query, IReadOnlyList<string> own, int relevant) in cases)
            {
                string[] list = [.. own, .. pool.Where(p => !own.Contains(p)).Take(size - own.Count)];
                _block.ClearCache();
                var clock = Stopwatch.StartNew();
                await _block.CacheDocumentsAsync(list, cancellationToken);
                double cacheMs = clock.Elapsed.TotalMilliseconds;
                await Time(Icr, async () => (await _icr.RerankAsync(query, list, null, cancellationToken)).Select(r => r.Index).ToArray());
                await Time(BlockIcr, async () => (await _block.RerankAsync(query, list, null, cancellationToken)).Select(r => r.Index).ToArray(), cacheMs);
                await Time(Listwise, () => SlidingListwiseAsync(query, list, cancellationToken));
                await Time(Bm25, () => Task.FromResult(new Bm25Index(list).Search(query, list.Length).Select(h => h.Document).ToArray()));

                async Task Time(string method, Func<Task<int[]>> rank, double cache = 0)
                {
                    var watch = Stopwatch.StartNew();
                    int[] order = await rank();
                    double ms = watch.Elapsed.TotalMilliseconds;
                    order = [.. order, .. Enumerable.Range(0, list.Length).Except(order)];
                    var t = totals.GetValueOrDefault(method);
                    totals[method] = (t.Ms + ms, t.Ndcg + Ndcg(order, relevant, 10), t.Top1 + (order[0] == relevant ? 1 : 0), t.CacheMs + cache);
                }
            }
            int n = cases.Count;
            rows.AddRange(totals.Select(t => new LatencyRow(size, t.Key, t.Value.Ms / n, t.Value.Ndcg / n, (double)t.Value.Top1 / n, t.Value.CacheMs / n)));
            Console.Error.WriteLine($"rerank latency: {size} documents done");
        }
        return rows;
    }

    // RankGPT's sliding window: rank the last 20, move 10 toward the front, repeat to the first.
    private async Task<int[]> SlidingListwiseAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken)
    {
        const int window = 20, step = 10;
        int[] order = Enumerable.Range(0, passages.Count).ToArray();
        for (int start = Math.Max(0, passages.Count - window); ; start = Math.Max(0, start - step))
        {
            int[] slice = order[start..Math.Min(start + window, order.Length)];
            IReadOnlyList<int> ranked = await RankSliceAsync(query, slice.Select(i => passages[i]).ToArray(), cancellationToken);
            for (int i = 0; i < slice.Length; i++)
            {
                order[start + i] = slice[ranked[i]];
            }
            if (start == 0)
            {
                return order;
            }
        }
    }

    // A slice whose prompt does not fit the context is ranked as two halves, one after the other.
    private async Task<IReadOnlyList<int>> RankSliceAsync(string query, string[] passages, CancellationToken cancellationToken)
    {
        try
        {
            return await _listwise.RankAsync(query, passages, cancellationToken);
        }
        catch (ArgumentException) when (passages.Length > 1)
        {
            int half = passages.Length / 2;
            IReadOnlyList<int> first = await RankSliceAsync(query, passages[..half], cancellationToken);
            IReadOnlyList<int> second = await RankSliceAsync(query, passages[half..], cancellationToken);
            return [.. first, .. second.Select(i => i + half)];
        }
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
        _icrUnnumbered.Dispose();
        _block.Dispose();
        _embeddings.Dispose();
        _listwise.Dispose();
    }
}
