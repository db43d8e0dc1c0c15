using System.Diagnostics;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;

namespace Heed.Cli.Bench;

/// <summary>
/// Many concurrent searches against one knowledge base and one model: every request must be
/// answered exactly once. Each search retrieves candidates (BM25) and re-ranks them with ICR
/// through the model. In the same run, at each concurrency: the same searches without
/// re-ranking, with one <see cref="InContextReranker"/> (one context, calls take turns: the
/// path before the pool), and with an <see cref="InContextRerankerPool"/>. Nothing is cached:
/// a repeated query is scored again.
/// </summary>
internal static class RagLoadBench
{
    public sealed record Result(string Mode, int Concurrency, int Requests, int Answered, double P50Ms, double P95Ms, double MaxMs, double Seconds)
    {
        public double Throughput => Requests / Seconds;
    }

    public sealed record Report(IReadOnlyList<Result> Results, int DistinctQueries, int SameScores, int Compared,
        IReadOnlyList<RerankProfile.Row> Profile);

    public static async Task<Report> RunAsync(LlamaModel model, int requests, int documents, int candidates, int contextSize,
        IReadOnlyList<int> concurrency, int poolSize, bool profile, CancellationToken cancellationToken)
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
            var options = new InContextRerankerOptions { ContextSize = contextSize };
            using var single = new InContextReranker(model, options);
            using var pool = new InContextRerankerPool(model, poolSize, options);
            var modes = new (string Name, IDocumentReranker? Reranker)[]
            {
                ("BM25 only", null),
                ($"BM25 + ICR, 1 reranker ({Environment.ProcessorCount} threads)", single),
                ($"BM25 + ICR, pool of {poolSize} ({pool.Options.ContextOptions.Threads} threads each)", pool),
            };
            var pipelines = new List<RagPipeline>();
            try
            {
                foreach ((_, IDocumentReranker? reranker) in modes)
                {
                    var pipeline = RagPipeline.CreateInMemory(new RagPipelineOptions
                    {
                        TokenCounter = text => model.Tokenizer.CountTokens(text),
                        Reranker = reranker,
                        CandidateCount = candidates,
                    });
                    pipelines.Add(pipeline);
                    await pipeline.IngestAsync(folder, null, cancellationToken);
                }

                IReadOnlyList<RerankProfile.Row> profileRows = [];
                if (profile)
                {
                    var calls = new List<(string, string[])>();
                    foreach (string q in queries.Take(Math.Min(8, queries.Length)))
                    {
                        IReadOnlyList<SearchHit> hits = await pipelines[0].SearchAsync(q, candidates, cancellationToken);
                        calls.Add((q, hits.Select(h => h.Chunk.Text).ToArray()));
                    }
                    RerankProfile.Run(model, calls.Take(1).ToList(), 1, contextSize); // warm-up
                    profileRows = new[] { 1, Environment.ProcessorCount }.Distinct()
                        .Select(t => RerankProfile.Run(model, calls, t, contextSize)).ToList();
                }

                var results = new List<Result>();
                int same = 0, compared = 0;
                foreach (int c in concurrency)
                {
                    var scores = new List<double?[][]>();
                    for (int m = 0; m < modes.Length; m++)
                    {
                        (Result result, double?[][] rerankScores) = await FireAsync(modes[m].Name, pipelines[m], queries, requests, c, cancellationToken);
                        results.Add(result);
                        scores.Add(rerankScores);
                    }
                    for (int i = 0; i < requests; i++)
                    {
                        compared++;
                        same += scores[1][i].SequenceEqual(scores[2][i]) ? 1 : 0;
                    }
                }
                return new Report(results, Math.Min(requests, queries.Distinct().Count()), same, compared, profileRows);
            }
            finally
            {
                pipelines.ForEach(p => p.Dispose());
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Sends `requests` searches with at most `concurrency` in flight; returns the timings and each request's rerank scores.
    private static async Task<(Result, double?[][])> FireAsync(string mode, RagPipeline pipeline, string[] queries, int requests, int concurrency,
        CancellationToken ct)
    {
        var latencies = new double[requests];
        var answered = new int[requests];
        var scores = new double?[requests][];
        using var inFlight = new SemaphoreSlim(concurrency, concurrency);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, requests).Select(async i =>
        {
            await inFlight.WaitAsync(ct);
            try
            {
                var one = Stopwatch.StartNew();
                IReadOnlyList<SearchHit> hits = await pipeline.SearchAsync(queries[i % queries.Length], 5, ct);
                latencies[i] = one.Elapsed.TotalMilliseconds;
                Interlocked.Add(ref answered[i], hits.Count > 0 ? 1 : 0);
                scores[i] = hits.Select(h => h.RerankScore).ToArray();
            }
            finally
            {
                inFlight.Release();
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        Array.Sort(latencies);
        double Percentile(double p) => latencies[Math.Min(requests - 1, (int)Math.Ceiling(p * requests) - 1)];
        return (new Result(mode, concurrency, requests, answered.Count(a => a == 1), Percentile(0.5), Percentile(0.95), latencies[^1], seconds), scores);
    }
}
