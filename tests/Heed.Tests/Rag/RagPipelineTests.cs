using Heed.Rag;
using Heed.Ranking;
using Heed.Text;
using Heed.Storage;

namespace Heed.Tests.Rag;

public class RagPipelineTests
{
    private static RagPipelineOptions Small(RagPipelineOptions? with = null) =>
        (with ?? new RagPipelineOptions()) with { TokenCounter = TestCounters.Words, Chunking = new ChunkingOptions { MaxTokens = 16, OverlapSentences = 1 } };

    [Fact]
    public async Task Ingests_a_folder_and_finds_the_passage_with_its_source_and_offsets()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using RagPipeline rag = RagPipeline.CreateInMemory(Small());
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(4, result.FilesFound);
        Assert.Equal(4, result.Added.Count);
        Assert.Equal(result.ChunksAdded, rag.ChunkCount);
        Assert.True(rag.ChunkCount >= 8);

        IReadOnlyList<SearchHit> hits = await rag.SearchAsync("What does chlorophyll absorb?", topK: 3);
        SearchHit top = hits[0];
        Assert.Equal(folder.Combine("docs", "plants.txt"), top.SourcePath);
        Assert.Contains("Chlorophyll in the leaves absorbs sunlight.", top.Chunk.Text);
        Assert.Equal(SampleCorpus.Plants.Substring((int)top.Chunk.StartOffset, top.Chunk.Text.Length), top.Chunk.Text);
        Assert.Equal(top.LexicalScore, top.Score);
        Assert.Equal(Enumerable.Range(1, hits.Count), hits.Select(h => h.Rank));

        SearchHit volcano = (await rag.SearchAsync("magma crust", 1))[0];
        Assert.EndsWith("volcano.html", volcano.SourcePath);
        Assert.DoesNotContain(rag.Chunks, c => c.Text.Contains("not text") || c.Text.Contains("menu"));
        Assert.Equal("Volcanoes", rag.Files.Single(f => f.Path.EndsWith("volcano.html")).Title);
        Assert.Equal("Cars", rag.Files.Single(f => f.Path.EndsWith("cars.md")).Title);
    }

    [Fact]
    public async Task An_empty_folder_gives_a_clear_result_and_searches_find_nothing()
    {
        using var folder = new TempFolder();
        string empty = folder.CreateFolder("empty");
        folder.Write("empty/notes.pdf", "not a supported type");
        using RagPipeline rag = RagPipeline.CreateInMemory(Small());
        IngestResult result = await rag.IngestAsync(empty);
        Assert.True(result.FoundNothing);
        Assert.Equal(0, result.TotalChunks);
        Assert.Contains("No .txt, .md", result.Summary);
        Assert.Empty(await rag.SearchAsync("anything", 5));
    }

    [Fact]
    public async Task Binary_files_are_skipped_with_a_reason_and_the_rest_is_indexed()
    {
        using var folder = new TempFolder();
        folder.Write("docs/ok.txt", "A readable sentence about turtles.");
        folder.WriteBytes("docs/blob.txt", [0x89, 0x50, 0x4E, 0x47, 0x00, 0x00, 0x1A]);
        using RagPipeline rag = RagPipeline.CreateInMemory(Small());
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        SkippedFile skipped = Assert.Single(result.Skipped);
        Assert.EndsWith("blob.txt", skipped.Path);
        Assert.Contains("binary", skipped.Reason);
        Assert.Equal(["ok.txt"], rag.Files.Select(f => Path.GetFileName(f.Path)));
    }

    [Fact]
    public async Task Empty_and_whitespace_only_files_are_tracked_with_no_chunks()
    {
        using var folder = new TempFolder();
        folder.Write("docs/empty.txt", "");
        folder.Write("docs/blank.md", "  \n\n\t ");
        folder.Write("docs/bare.html", "<html><body><script>only()</script></body></html>");
        using RagPipeline rag = RagPipeline.CreateInMemory(Small());
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(3, result.Added.Count);
        Assert.Equal(0, rag.ChunkCount);
        Assert.All(rag.Files, f => Assert.Equal(0, f.ChunkCount));
        Assert.Equal(3, (await rag.IngestAsync(folder.Combine("docs"))).Unchanged);
        var file = await Assert.ThrowsAsync<ArgumentException>(() => rag.IngestAsync(folder.Combine("docs", "empty.txt")));
        Assert.Contains("is a file", file.Message);
    }

    [Fact]
    public async Task Invalid_utf8_is_indexed_with_replacement_characters_and_a_warning()
    {
        using var folder = new TempFolder();
        folder.WriteBytes("docs/latin1.txt", [.. "Caf"u8, 0xE9, .. " serves espresso daily."u8]);
        var logger = new RecordingLogger();
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with { Logger = logger });
        await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal("Caf\uFFFD serves espresso daily.", Assert.Single(rag.Chunks).Text);
        Assert.Contains(logger.Warnings, w => w.Contains("latin1.txt") && w.Contains("not valid UTF-8"));
        Assert.Single(await rag.SearchAsync("espresso", 1));
    }

    [Fact]
    public async Task Empty_queries_and_missing_folders_are_refused_with_a_reason()
    {
        using var folder = new TempFolder();
        using RagPipeline rag = RagPipeline.CreateInMemory(Small());
        var empty = await Assert.ThrowsAsync<ArgumentException>(() => rag.SearchAsync("   "));
        Assert.Contains("empty", empty.Message);
        await Assert.ThrowsAsync<ArgumentNullException>(() => rag.SearchAsync(null!));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => rag.SearchAsync("x", 0));
        await Assert.ThrowsAsync<ArgumentException>(() => rag.AskAsync(""));
        var missing = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => rag.IngestAsync(folder.Combine("nope")));
        Assert.Contains("nope", missing.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RagPipeline.CreateInMemory(new RagPipelineOptions { CandidateCount = 0 }));
    }

    [Fact]
    public async Task Answers_cite_sources_by_number_and_list_the_cited_chunks()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        var chat = new FakeChatClient(keyword: "chlorophyll", extraText: " Not [9].");
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with { ChatClient = chat, AnswerSourceCount = 3 });
        await rag.IngestAsync(folder.Combine("docs"));

        RagAnswer answer = await rag.AskAsync("How do plants use chlorophyll and sunlight?");
        string prompt = Assert.Single(chat.Calls).Last().Text;
        Assert.Contains("Question: How do plants use chlorophyll and sunlight?", prompt);
        for (int i = 0; i < answer.Sources.Count; i++)
        {
            Assert.Equal(i + 1, answer.Sources[i].Number);
            Assert.Contains($"[{i + 1}] ({Path.GetFileName(answer.Sources[i].SourcePath)}) {answer.Sources[i].Text.ReplaceLineEndings(" ")}", prompt);
        }
        Assert.NotEmpty(answer.Citations);
        Assert.All(answer.Citations, c => Assert.Contains("chlorophyll", c.Text, StringComparison.OrdinalIgnoreCase));
        Assert.All(answer.Citations, c => Assert.EndsWith("plants.txt", c.SourcePath));
        Assert.Equal(answer.Citations.Select(c => c.Number), answer.CitedNumbers);
        Assert.DoesNotContain(9, answer.CitedNumbers); // there is no source 9
        Citation first = answer.Citations[0];
        Assert.Equal(SampleCorpus.Plants.Substring((int)first.StartOffset, (int)(first.EndOffset - first.StartOffset)), first.Text);
    }

    [Fact]
    public async Task Asking_without_matches_does_not_call_the_model_and_without_a_chat_client_is_refused()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        var chat = new FakeChatClient("x");
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with { ChatClient = chat });
        await rag.IngestAsync(folder.Combine("docs"));
        RagAnswer answer = await rag.AskAsync("zeppelin quasar");
        Assert.False(answer.FoundSources);
        Assert.Empty(chat.Calls);

        using RagPipeline noChat = RagPipeline.CreateInMemory(Small());
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => noChat.AskAsync("anything"));
        Assert.Contains("ChatClient", e.Message);
    }

    [Fact]
    public async Task Hybrid_retrieval_finds_synonyms_that_bm25_misses_and_fuses_by_reciprocal_rank()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        var embeddings = new KeywordEmbeddingGenerator();
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with { EmbeddingGenerator = embeddings });
        await rag.IngestAsync(folder.Combine("docs"));

        // "automobile" is in no document, so BM25 finds nothing; the embedding puts it with "car", "engine", "truck"
        IReadOnlyList<SearchHit> hits = await rag.SearchAsync("automobile", 3);
        SearchHit top = hits[0];
        Assert.EndsWith("cars.md", top.SourcePath);
        Assert.Null(top.LexicalScore);
        Assert.True(top.DenseSimilarity > 0.5);
        Assert.Equal(1.0 / 61, top.Score, 12); // dense rank 1, absent from BM25
    }

    [Fact]
    public async Task Hybrid_scores_are_the_reciprocal_rank_fusion_of_the_two_rankings_worked_by_hand()
    {
        using var folder = new TempFolder();
        folder.Write("docs/d1.txt", "alpha beta");
        folder.Write("docs/d2.txt", "alpha gamma");
        folder.Write("docs/d3.txt", "delta epsilon");
        var embeddings = new TableEmbeddingGenerator(new Dictionary<string, float[]>
        {
            ["alpha"] = [1, 0], ["alpha beta"] = [0, 1], ["alpha gamma"] = [1, 1], ["delta epsilon"] = [1, 0.1f],
        });
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with { EmbeddingGenerator = embeddings });
        await rag.IngestAsync(folder.Combine("docs"));
        // BM25: d1, d2 tie and keep index order (d1 rank 1, d2 rank 2); d3 has no "alpha".
        // Dense cosines: d3 0.995 (rank 1), d2 0.707 (rank 2), d1 0 (rank 3).
        IReadOnlyList<SearchHit> hits = await rag.SearchAsync("alpha", 3);
        Assert.Equal(["d1.txt", "d2.txt", "d3.txt"], hits.Select(h => Path.GetFileName(h.SourcePath)));
        Assert.Equal([1.0 / 61 + 1.0 / 63, 1.0 / 62 + 1.0 / 62, 1.0 / 61], hits.Select(h => h.Score));
        Assert.Equal(1 / Math.Sqrt(2), hits[1].DenseSimilarity!.Value, 6);
        Assert.Null(hits[2].LexicalScore);
    }

    [Fact]
    public async Task A_reranker_reorders_the_candidates()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using RagPipeline plain = RagPipeline.CreateInMemory(Small());
        using RagPipeline reranked = RagPipeline.CreateInMemory(Small() with { Reranker = new ReversingReranker() });
        await plain.IngestAsync(folder.Combine("docs"));
        await reranked.IngestAsync(folder.Combine("docs"));
        IReadOnlyList<SearchHit> before = await plain.SearchAsync("water", 20);
        IReadOnlyList<SearchHit> after = await reranked.SearchAsync("water", 20);
        Assert.True(before.Count >= 3);
        Assert.Equal(before.Select(h => h.Chunk).Reverse(), after.Select(h => h.Chunk));
        Assert.All(after, h => Assert.Equal(h.RerankScore, h.Score));
    }

    [Fact]
    public async Task Cancellation_before_or_during_ingest_leaves_the_index_as_it_was()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        folder.Write("more/extra.txt", "Extra words about comets. Comets have tails of dust.");
        using var cts = new CancellationTokenSource();
        int counted = 0;
        bool armed = false;
        using RagPipeline rag = RagPipeline.CreateInMemory(Small() with
        {
            TokenCounter = s => { if (Volatile.Read(ref armed) && Interlocked.Increment(ref counted) == 3) { cts.Cancel(); } return TestCounters.Words(s); },
        });
        await rag.IngestAsync(folder.Combine("more"));
        int before = rag.ChunkCount;

        using var already = new CancellationTokenSource();
        already.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rag.IngestAsync(folder.Combine("docs"), null, already.Token));
        Assert.Equal(before, rag.ChunkCount);

        Volatile.Write(ref armed, true);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rag.IngestAsync(folder.Combine("docs"), null, cts.Token));
        Assert.Equal(before, rag.ChunkCount);
        Assert.InRange(counted, 3, 5); // it stopped soon after the token counter cancelled
        Assert.All(rag.Files, f => Assert.EndsWith("extra.txt", f.Path));
    }

    private sealed class ReversingReranker : IDocumentReranker
    {
        public Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
            CancellationToken cancellationToken = default)
        {
            Assert.NotEmpty(documents);
            IReadOnlyList<RankedDocument> ranked = documents.Select((d, i) => new RankedDocument(i, d, i)).Reverse().Take(topK ?? documents.Count).ToList();
            return Task.FromResult(ranked);
        }
    }
}

public class RagPipelineProgressTests
{
    [Fact]
    public async Task Progress_goes_file_by_file_and_ends_done_at_one()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        var reports = new List<IngestProgress>();
        using RagPipeline rag = RagPipeline.CreateInMemory(new RagPipelineOptions { TokenCounter = TestCounters.Words });
        await rag.IngestAsync(folder.Combine("docs"), new Recorder(reports));
        Assert.Equal(IngestStage.Done, reports[^1].Stage);
        Assert.Equal(1.0, reports[^1].Fraction);
        Assert.Equal(4, reports[^1].FilesDone);
        Assert.Equal(rag.ChunkCount, reports[^1].ChunksCreated);
        string[] reading = reports.Where(r => r.Stage == IngestStage.Reading).Select(r => Path.GetFileName(r.CurrentFile!)).Distinct().ToArray();
        Assert.Equal(["cars.md", "oceans.txt", "plants.txt", "volcano.html"], reading);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.Second.BytesDone >= p.First.BytesDone));
    }

    [Fact]
    public async Task A_reranker_that_returns_bad_indexes_is_reported_clearly()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using RagPipeline rag = RagPipeline.CreateInMemory(new RagPipelineOptions { Reranker = new BrokenReranker() });
        await rag.IngestAsync(folder.Combine("docs"));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => rag.SearchAsync("water"));
        Assert.Contains("BrokenReranker", e.Message);
    }

    [Fact]
    public async Task The_chunk_and_file_lists_cannot_be_changed_through_the_pipeline()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using RagPipeline rag = RagPipeline.CreateInMemory();
        await rag.IngestAsync(folder.Combine("docs"));
        Assert.False(rag.Chunks is TextChunk[] or List<TextChunk>);
        Assert.Throws<NotSupportedException>(() => ((IList<TextChunk>)rag.Chunks)[0] = null!);
        Assert.Throws<NotSupportedException>(() => ((IList<IndexedFile>)rag.Files).Clear());
    }

    private sealed class Recorder(List<IngestProgress> reports) : IProgress<IngestProgress>
    {
        public void Report(IngestProgress value) => reports.Add(value);
    }

    private sealed class BrokenReranker : Heed.Ranking.IDocumentReranker
    {
        public Task<IReadOnlyList<Heed.Ranking.RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
            CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<Heed.Ranking.RankedDocument>>([new(documents.Count + 5, "x", 1)]);
    }
}
