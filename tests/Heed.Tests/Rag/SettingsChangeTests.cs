using Heed.Rag;
using Heed.Text;

namespace Heed.Tests.Rag;

/// <summary>An index built with one chunking or embedding model, then used with another.</summary>
public class SettingsChangeTests
{
    private static RagPipelineOptions Options(int maxTokens, KeywordEmbeddingGenerator? embeddings = null, RecordingLogger? logger = null) => new()
    {
        TokenCounter = TestCounters.Words,
        TokenCounterName = "words",
        Chunking = new ChunkingOptions { MaxTokens = maxTokens, OverlapSentences = 0 },
        EmbeddingGenerator = embeddings,
        Logger = logger,
    };

    [Fact]
    public async Task Other_chunking_settings_cut_unchanged_files_again()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        string index = folder.Combine("index.heed");
        int coarse;
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options(32)))
        {
            await rag.IngestAsync(folder.Combine("docs"));
            coarse = rag.ChunkCount;
            Assert.All(rag.Files, f => Assert.Equal("max 32 tokens, overlap 0 sentence(s), words token counter", f.Chunking));
        }
        using RagPipeline fine = await RagPipeline.OpenAsync(index, Options(10));
        IngestResult result = await fine.IngestAsync(folder.Combine("docs"));
        Assert.Equal(4, result.Updated.Count);
        Assert.True(fine.ChunkCount > coarse);
        Assert.All(fine.Chunks, c => Assert.InRange(TestCounters.Words(c.Text), 1, 10));
        Assert.Equal(4, (await fine.IngestAsync(folder.Combine("docs"))).Unchanged);
    }

    [Fact]
    public async Task Another_embedding_model_is_not_mixed_with_the_stored_vectors()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        string index = folder.Combine("index.heed");
        var first = new KeywordEmbeddingGenerator("model-a");
        int chunks;
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options(16, first)))
        {
            await rag.IngestAsync(folder.Combine("docs"));
            chunks = rag.ChunkCount;
        }
        Assert.Equal(chunks, first.TextsEmbedded);

        var second = new KeywordEmbeddingGenerator("model-b");
        var logger = new RecordingLogger();
        using RagPipeline other = await RagPipeline.OpenAsync(index, Options(16, second, logger));
        Assert.Empty(await other.SearchAsync("automobile", 3)); // BM25 only: the stored vectors are model-a's
        Assert.Contains(logger.Warnings, w => w.Contains("model-a") && w.Contains("model-b"));
        Assert.Equal(0, second.TextsEmbedded);

        IngestResult result = await other.IngestAsync(folder.Combine("docs"));
        Assert.Equal(4, result.Unchanged);
        Assert.Equal(chunks, second.TextsEmbedded); // every chunk embedded again with model-b
        Assert.EndsWith("cars.md", (await other.SearchAsync("automobile", 1))[0].SourcePath);
    }

    [Fact]
    public async Task Chunks_ingested_without_embeddings_are_embedded_by_a_later_ingest_with_a_generator()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        var logger = new RecordingLogger();
        var embeddings = new KeywordEmbeddingGenerator();
        string index = folder.Combine("index.heed");
        using (RagPipeline plain = await RagPipeline.OpenAsync(index, Options(16)))
        {
            await plain.IngestAsync(folder.Combine("docs"));
        }
        using RagPipeline rag = await RagPipeline.OpenAsync(index, Options(16, embeddings, logger));
        Assert.Empty(await rag.SearchAsync("automobile", 3));
        Assert.Contains(logger.Warnings, w => w.Contains("have no embedding"));
        await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(rag.ChunkCount, embeddings.TextsEmbedded);
        Assert.EndsWith("cars.md", (await rag.SearchAsync("automobile", 1))[0].SourcePath);
    }
}
