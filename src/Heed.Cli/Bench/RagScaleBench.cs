using System.Diagnostics;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;
using Heed.Storage;
using Heed.Storage.Postgres;
using Heed.Text;
using Microsoft.Extensions.AI;

namespace Heed.Cli.Bench;

/// <summary>
/// The knowledge base at scale, PostgreSQL against the embedded file index in the same run: a synthetic corpus of
/// about N chunks ingested into both, then the same queries searched one at a time (keywords + vectors fused), with
/// and without ICR reranking. Vectors come from a hashed bag of words (64 dimensions), so that the stores, not an
/// embedding model, are measured; the reranker is the real model.
/// </summary>
internal static class RagScaleBench
{
    public sealed record Row(string Store, long Chunks, double IngestSeconds, double P50Ms, double P95Ms, double RerankP50Ms, double RerankP95Ms, int Found);

    private const int ChunksPerFile = 100;

    public static async Task<IReadOnlyList<Row>> RunAsync(LlamaModel model, string connectionString, int chunks, int queries, int rerankQueries,
        int candidates, CancellationToken cancellationToken)
    {
        string folder = Directory.CreateTempSubdirectory("heed-bench-scale-").FullName;
        try
        {
            int files = Math.Max(1, chunks / ChunksPerFile);
            var random = new Random(5);
            for (int f = 0; f < files; f++)
            {
                await File.WriteAllTextAsync(Path.Combine(folder, $"doc{f:D6}.txt"), Document(f, random), cancellationToken);
            }
            string[] questions = Enumerable.Range(0, queries).Select(i => $"Which record names {Marker(random.Next(files), random.Next(ChunksPerFile))}?").ToArray();
            using (IKnowledgeStore target = await PostgresKnowledgeStore.OpenAsync(connectionString, null, cancellationToken))
            {
                if (await target.CountChunksAsync(cancellationToken) != 0)
                {
                    throw new ArgumentException("The bench ingests into the database given with --postgres and times it: give an empty one (CREATE DATABASE …).");
                }
            }
            var embeddings = new HashedWordEmbedding();
            using var reranker = new InContextReranker(model);
            var rows = new List<Row>();
            string index = Path.Combine(folder, "bench.heedindex");
            foreach (string store in new[] { "embedded file index", "PostgreSQL + pgvector" })
            {
                Func<IKnowledgeStore> open = store.StartsWith("PostgreSQL", StringComparison.Ordinal)
                    ? () => PostgresKnowledgeStore.OpenAsync(connectionString, null, cancellationToken).GetAwaiter().GetResult()
                    : () => EmbeddedKnowledgeStore.Open(index);
                var options = new RagPipelineOptions
                {
                    Chunking = new ChunkingOptions { MaxTokens = 48, OverlapSentences = 0 },
                    EmbeddingGenerator = embeddings,
                    EmbeddingBatchSize = 256,
                    CandidateCount = candidates,
                };
                var clock = Stopwatch.StartNew();
                using (RagPipeline ingest = RagPipeline.Create(open(), options))
                {
                    await ingest.IngestAsync(folder, null, cancellationToken);
                }
                double ingestSeconds = clock.Elapsed.TotalSeconds;
                using RagPipeline plain = RagPipeline.Create(open(), options);
                using RagPipeline reranked = RagPipeline.Create(open(), options with { Reranker = reranker });
                (double p50, double p95, int found) = await TimeAsync(plain, questions, cancellationToken);
                (double r50, double r95, _) = await TimeAsync(reranked, questions.Take(rerankQueries).ToArray(), cancellationToken);
                rows.Add(new Row(store, await plain.Store.CountChunksAsync(cancellationToken), ingestSeconds, p50, p95, r50, r95, found));
            }
            return rows;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Searches one at a time; the percentiles of the latencies and how many found the chunk naming the marker.</summary>
    private static async Task<(double P50, double P95, int Found)> TimeAsync(RagPipeline rag, string[] questions, CancellationToken cancellationToken)
    {
        await rag.SearchAsync(questions[0], 5, cancellationToken); // warm up (connections, index pages)
        var latencies = new double[questions.Length];
        int found = 0;
        for (int i = 0; i < questions.Length; i++)
        {
            var clock = Stopwatch.StartNew();
            IReadOnlyList<SearchHit> hits = await rag.SearchAsync(questions[i], 5, cancellationToken);
            latencies[i] = clock.Elapsed.TotalMilliseconds;
            string marker = questions[i]["Which record names ".Length..^1];
            found += hits.Any(h => h.Chunk.Text.Contains(marker + " ", StringComparison.Ordinal)) ? 1 : 0;
        }
        Array.Sort(latencies);
        double Percentile(double p) => latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(p * latencies.Length) - 1)];
        return (Percentile(0.5), Percentile(0.95), found);
    }

    private static readonly string[] Words = ("river stone market lantern harbor meadow engine letter garden window bridge winter summer " +
        "copper silver forest mountain valley signal station ledger archive monsoon compass anchor furnace orchard quarry canyon").Split(' ');

    private static string Marker(int file, int paragraph) => $"rec{file:x}q{paragraph:x}";

    /// <summary>One paragraph per record, each naming its unique marker among common words: 20 words, one 48-token chunk.</summary>
    private static string Document(int file, Random random)
    {
        var text = new System.Text.StringBuilder();
        for (int p = 0; p < ChunksPerFile; p++)
        {
            text.Append($"Record {Marker(file, p)} notes the");
            for (int w = 0; w < 16; w++)
            {
                text.Append(' ').Append(Words[random.Next(Words.Length)]);
            }
            text.Append(".\n\n");
        }
        return text.ToString();
    }

    /// <summary>A bag of words hashed into 64 dimensions: deterministic and cheap, so that ingest measures the store.</summary>
    private sealed class HashedWordEmbedding : IEmbeddingGenerator<string, Embedding<float>>
    {
        private const int Dimensions = 64;

        public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
            CancellationToken cancellationToken = default) =>
            Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v)))));

        public object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("hashed-words", null, "hashed-words-64", Dimensions) : null;

        public void Dispose()
        {
        }

        private static float[] Embed(string text)
        {
            var vector = new float[Dimensions];
            foreach (string word in text.ToLowerInvariant().Split([' ', '.', ',', '?', '\n'], StringSplitOptions.RemoveEmptyEntries))
            {
                uint hash = 2166136261; // FNV-1a: the same in every process, unlike string.GetHashCode
                foreach (char c in word)
                {
                    hash = (hash ^ c) * 16777619;
                }
                vector[hash % Dimensions] += 1;
            }
            return vector;
        }
    }
}
