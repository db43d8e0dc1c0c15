using Heed.Rag;
using Heed.Text;
using Heed.Storage;

namespace Heed.Tests.Rag;

public class IndexPersistenceTests
{
    private static RagPipelineOptions Options(RecordingLogger? logger = null) => new()
    {
        TokenCounter = TestCounters.Words,
        Chunking = new ChunkingOptions { MaxTokens = 16 },
        Logger = logger,
    };

    private static async Task<string[]> Describe(RagPipeline rag, string query) =>
        (await rag.SearchAsync(query, 10)).Select(h => $"{h.SourcePath}|{h.Chunk.Ordinal}|{h.Chunk.StartOffset}|{h.Chunk.EndOffset}|{h.Score:R}|{h.Chunk.Text}").ToArray();

    [Fact]
    public async Task Reopening_gives_the_same_files_chunks_and_search_results()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        string index = folder.Combine("kb", "index.heed");
        string[] before;
        IReadOnlyList<IndexedFile> files;
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
            before = await Describe(rag, "water sunlight engine");
            files = rag.Files;
        }
        Assert.True(File.Exists(index));
        Assert.False(File.Exists(index + ".tmp"));
        using RagPipeline reopened = await RagPipeline.OpenAsync(index, Options());
        Assert.False(reopened.RecoveredFromBackup);
        Assert.True(before.Length >= 3);
        Assert.Equal(before, await Describe(reopened, "water sunlight engine"));
        Assert.Equal(files, reopened.Files);
    }

    [Fact]
    public async Task Embeddings_are_stored_and_used_after_reopening()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        string index = folder.Combine("index.heed");
        var embeddings = new KeywordEmbeddingGenerator();
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options() with { EmbeddingGenerator = embeddings }))
        {
            await rag.IngestAsync(folder.Combine("docs"));
        }
        int callsAfterIngest = embeddings.Calls;
        using RagPipeline reopened = await RagPipeline.OpenAsync(index, Options() with { EmbeddingGenerator = embeddings });
        SearchHit top = (await reopened.SearchAsync("automobile", 1))[0];
        Assert.EndsWith("cars.md", top.SourcePath);
        Assert.Equal(callsAfterIngest + 1, embeddings.Calls); // only the query was embedded, chunks came from the file
    }

    [Fact]
    public async Task A_truncated_index_falls_back_to_the_last_good_backup()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "Alpha facts are here. Alpha is first.");
        string index = folder.Combine("index.heed");
        var logger = new RecordingLogger();
        string[] firstState;
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
            firstState = rag.Chunks.Select(c => c.Text).ToArray();
            folder.Write("docs/b.txt", "Beta facts arrive later.");
            await rag.IngestAsync(folder.Combine("docs")); // index = a + b, index.bak = a
        }
        Assert.True(File.Exists(index + ".bak"));
        using (var stream = new FileStream(index, FileMode.Open))
        {
            stream.SetLength(stream.Length / 2);
        }
        using RagPipeline recovered = await RagPipeline.OpenAsync(index, Options(logger));
        Assert.True(recovered.RecoveredFromBackup);
        Assert.Equal(firstState, recovered.Chunks.Select(c => c.Text));
        Assert.Contains(logger.Warnings, w => w.Contains("truncated") && w.Contains(".bak"));

        // the next ingest writes a good index and keeps the good backup (the corrupt file never becomes the backup)
        await recovered.IngestAsync(folder.Combine("docs"));
        using RagPipeline again = await RagPipeline.OpenAsync(index, Options());
        Assert.False(again.RecoveredFromBackup);
        Assert.Equal(2, again.Files.Count);
        Assert.Equal(firstState, IndexFileFormat.Read(index + ".bak").Chunks.Select(c => c.Chunk.Text));
    }

    [Fact]
    public async Task A_bad_checksum_without_a_backup_is_a_clear_corrupt_index_error()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "Some indexed text. More text here.");
        string index = folder.Combine("index.heed");
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
        }
        byte[] bytes = await File.ReadAllBytesAsync(index);
        bytes[bytes.Length / 2] ^= 0x5A;
        await File.WriteAllBytesAsync(index, bytes);
        var e = await Assert.ThrowsAsync<HeedIndexCorruptException>(() => RagPipeline.OpenAsync(index, Options()));
        Assert.Equal(index, e.IndexPath);
        Assert.Contains("checksum", e.Message);
        Assert.Contains("Delete it and run `heed rag ingest`", e.Message);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(index)); // the damaged file is left for inspection
    }

    [Fact]
    public async Task A_truncated_index_without_a_backup_or_with_fallback_off_is_an_error()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "Some indexed text.");
        string index = folder.Combine("index.heed");
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
            await File.AppendAllTextAsync(folder.Combine("docs/a.txt"), " Changed.");
            await rag.IngestAsync(folder.Combine("docs"));
        }
        await File.WriteAllBytesAsync(index, (await File.ReadAllBytesAsync(index))[..20]);
        var noFallback = await Assert.ThrowsAsync<HeedIndexCorruptException>(() =>
            RagPipeline.OpenAsync(index, Options() with { FallBackToBackup = false }));
        Assert.Contains("truncated", noFallback.Message);
        File.Delete(index + ".bak");
        await Assert.ThrowsAsync<HeedIndexCorruptException>(() => RagPipeline.OpenAsync(index, Options()));
        await File.WriteAllTextAsync(index, "not an index at all, just some text that is long enough to have a footer.....");
        var notIndex = await Assert.ThrowsAsync<HeedIndexCorruptException>(() => RagPipeline.OpenAsync(index, Options()));
        Assert.Contains("signature", notIndex.Message);
    }

    [Fact]
    public async Task A_save_interrupted_between_renames_or_while_writing_loses_nothing()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "Durable text survives crashes.");
        string index = folder.Combine("index.heed");
        using (RagPipeline rag = await RagPipeline.OpenAsync(index, Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
        }
        // a crash while writing leaves a partial temp file: it is ignored
        await File.WriteAllTextAsync(index + ".tmp", "partial garbage");
        using (RagPipeline afterPartialWrite = await RagPipeline.OpenAsync(index, Options()))
        {
            Assert.Equal("Durable text survives crashes.", Assert.Single(afterPartialWrite.Chunks).Text);
        }
        // a crash after "index → index.bak" but before "tmp → index": the backup is used
        File.Move(index, index + ".bak");
        using RagPipeline afterRename = await RagPipeline.OpenAsync(index, Options());
        Assert.True(afterRename.RecoveredFromBackup);
        Assert.Equal("Durable text survives crashes.", Assert.Single(afterRename.Chunks).Text);
    }

    [Fact]
    public async Task A_save_that_fails_keeps_the_previous_index_on_disk_and_in_memory()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "The first version is safe.");
        string index = folder.Combine("index.heed");
        using RagPipeline rag = await RagPipeline.OpenAsync(index, Options());
        await rag.IngestAsync(folder.Combine("docs"));
        byte[] saved = await File.ReadAllBytesAsync(index);
        folder.Write("docs/b.txt", "A second file that will not be saved.");
        Directory.CreateDirectory(index + ".tmp"); // the temporary file cannot be created: the save fails before any rename
        var e = await Assert.ThrowsAsync<IOException>(() => rag.IngestAsync(folder.Combine("docs")));
        Assert.Contains("the previous index is unchanged", e.Message);
        Assert.Equal(saved, await File.ReadAllBytesAsync(index));
        Assert.Single(rag.Files);

        Directory.Delete(index + ".tmp");
        IngestResult retry = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Single(retry.Added);
        Assert.Equal(saved, await File.ReadAllBytesAsync(index + ".bak"));
    }

    [Fact]
    public async Task Two_writers_on_one_index_file_do_not_lose_each_others_files()
    {
        using var folder = new TempFolder();
        folder.Write("one/a.txt", "Written by the first pipeline.");
        folder.Write("two/b.txt", "Written by the second pipeline.");
        string index = folder.Combine("index.heed");
        using RagPipeline first = await RagPipeline.OpenAsync(index, Options());
        using RagPipeline second = await RagPipeline.OpenAsync(index, Options()); // opened before the first one saves
        await first.IngestAsync(folder.Combine("one"));
        await second.IngestAsync(folder.Combine("two"));
        Assert.Equal(["a.txt", "b.txt"], second.Files.Select(f => Path.GetFileName(f.Path)));
        using RagPipeline reopened = await RagPipeline.OpenAsync(index, Options());
        Assert.Equal(2, reopened.Files.Count);
    }

    [Fact]
    public async Task An_ingest_while_another_writer_holds_the_lock_is_refused_and_changes_nothing()
    {
        using var folder = new TempFolder();
        folder.Write("docs/a.txt", "Some text.");
        string index = folder.Combine("index.heed");
        using RagPipeline rag = await RagPipeline.OpenAsync(index, Options());
        using (new FileStream(index + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var e = await Assert.ThrowsAsync<IOException>(() => rag.IngestAsync(folder.Combine("docs")));
            Assert.Contains("Another process is writing the index", e.Message);
        }
        Assert.False(File.Exists(index));
        Assert.Single((await rag.IngestAsync(folder.Combine("docs"))).Added);
    }

    [Fact]
    public async Task Opening_a_folder_as_the_index_is_refused()
    {
        using var folder = new TempFolder();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => RagPipeline.OpenAsync(folder.Path));
        Assert.Contains("is a folder", e.Message);
    }
}
