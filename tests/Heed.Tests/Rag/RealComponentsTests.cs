using Heed.AI;
using Heed.Rag;
using Heed.Ranking;
using Heed.Text;

namespace Heed.Tests.Rag;

/// <summary>
/// The pipeline with Heed's own model-backed parts (ICR reranker, llama embeddings, llama chat) on the tiny
/// random-weight model: it proves the parts plug together, not that the answers are good.
/// </summary>
[Collection(TinyModelCollection.Name)]
public class RealComponentsTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task Ingest_search_and_ask_run_end_to_end_with_the_model_backed_parts()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using var reranker = new InContextReranker(fixture.Model, new InContextRerankerOptions { ContextSize = 512 });
        using var embeddings = new LlamaEmbeddingGenerator(fixture.Model, contextSize: 256);
        using var chat = new LlamaChatClient(fixture.Model, new Heed.Llama.LlamaContextOptions { ContextSize = 1024 },
            new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 8 });
        using RagPipeline rag = await RagPipeline.OpenAsync(folder.Combine("index.heed"), new RagPipelineOptions
        {
            TokenCounter = fixture.Model.Tokenizer.CountTokens,
            TokenCounterName = "tiny",
            Chunking = new ChunkingOptions { MaxTokens = 48 },
            EmbeddingGenerator = embeddings,
            Reranker = reranker,
            ChatClient = chat,
            CandidateCount = 4,
            AnswerSourceCount = 2,
            MaxAnswerTokens = 8,
        });
        IngestResult ingest = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(4, ingest.Added.Count);
        Assert.All(rag.Chunks, c => Assert.InRange(fixture.Model.Tokenizer.CountTokens(c.Text), 1, 48));

        IReadOnlyList<SearchHit> hits = await rag.SearchAsync("chlorophyll sunlight", 3);
        Assert.InRange(hits.Count, 1, 3);
        Assert.All(hits, h => Assert.NotNull(h.RerankScore));
        // Fusion takes the union of BM25's and the embeddings' candidates, so a hit may come from one
        // list only (which ones reach the top depends on the reranker); the dense part must have run.
        Assert.All(hits, h => Assert.True(h.LexicalScore is not null || h.DenseSimilarity is not null));
        Assert.Contains(hits, h => h.DenseSimilarity is not null);
        Assert.Equal(hits.Count, hits.Select(h => h.Chunk).Distinct().Count());

        RagAnswer answer = await rag.AskAsync("What absorbs sunlight?");
        Assert.Equal(2, answer.Sources.Count);
        Assert.All(answer.CitedNumbers, n => Assert.InRange(n, 1, 2));
    }
}
