using System.Diagnostics;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;

namespace Heed.Cli.Bench;

/// <summary>
/// Many concurrent searches against one knowledge base and one model: every request must be
/// answered exactly once. Each search retrieves candidates (BM25) and re-ranks them with ICR
/// through the model; the peer in the same run is the same searches without re-ranking.
/// </summary>
internal static class RagLoadBench
{
    public sealed record Result(string Mode, int Requests, int Answered, double P50Ms, double P95Ms, double MaxMs, double Seconds);

    public static async Task<IReadOnlyList<Result>> RunAsync(LlamaModel model, int requests, int documents, int candidates,
        int contextSize, CancellationToken cancellationToken)
    {
        string folder = Directory.CreateTempSubdirectory("heed-bench-rag-").FullName;
        try
        {
            IReadOnlyList<RerankSet.Case> set = RerankSet.Build(documents, 5, seed: 11);
            for (int i = 0; i < set.Count; i++)
            {
                await File.WriteAllTextAsync(Path.Combine(folder, $"doc{i:D4}.txt"), string.Join("\n\n", set[i].Passages), cancellationToken);
            }
            string[] queries = set.Select(c => c.Query).ToArray();
            using var reranker = new InContextReranker(model, new InContextRerankerOptions { ContextSize = contextSize });
            var results = new List<Result>();
            foreach ((string mode, IDocumentReranker? r) in new (string, IDocumentReranker?)[] { ("BM25 only", null), ("BM25 + ICR rerank", reranker) })
            {
                using RagPipeline pipeline = RagPipeline.CreateInMemory(new RagPipelineOptions
                {
                    TokenCounter = text => model.Tokenizer.CountTokens(text),
                    Reranker = r,
                    CandidateCount = candidates,
                });
                await pipeline.IngestAsync(folder, null, cancellationToken);
                results.Add(await FireAsync(mode, pipeline, queries, requests, cancellationToken));
            }
            return results;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<Result> FireAsync(string mode, RagPipeline pipeline, string[] queries, int requests, CancellationToken ct)
    {
        var latencies = new double[requests];
        var answered = new int[requests];
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, requests).Select(async i =>
        {
            var one = Stopwatch.StartNew();
            IReadOnlyList<SearchHit> hits = await pipeline.SearchAsync(queries[i % queries.Length], 5, ct);
            latencies[i] = one.Elapsed.TotalMilliseconds;
            Interlocked.Add(ref answered[i], hits.Count > 0 ? 1 : 0);
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        Array.Sort(latencies);
        double Percentile(double p) => latencies[Math.Min(requests - 1, (int)Math.Ceiling(p * requests) - 1)];
        return new Result(mode, requests, answered.Count(a => a == 1), Percentile(0.5), Percentile(0.95), latencies[^1], seconds);
    }
}
