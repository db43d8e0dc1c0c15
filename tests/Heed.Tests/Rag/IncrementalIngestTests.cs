using Heed.Rag;
using Heed.Text;

namespace Heed.Tests.Rag;

public class IncrementalIngestTests
{
    private static RagPipeline Create() => RagPipeline.CreateInMemory(new RagPipelineOptions
    {
        TokenCounter = TestCounters.Words,
        Chunking = new ChunkingOptions { MaxTokens = 16 },
    });

    [Fact]
    public async Task Changed_files_are_reindexed_deleted_ones_removed_and_unchanged_ones_skipped()
    {
        using var folder = new TempFolder();
        string a = folder.Write("docs/a.txt", "Apples grow on trees. Orchards have many apple trees.");
        string b = folder.Write("docs/b.txt", "Bananas are yellow.");
        string c = folder.Write("docs/sub/c.txt", "Cherries are red.");
        using RagPipeline rag = Create();
        IngestResult first = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal([a, b, c], first.Added.Order());
        TextChunk[] aChunks = rag.Chunks.Where(x => x.SourcePath == a).ToArray();

        File.WriteAllText(b, "Bananas are yellow. Blueberries are blue.");
        File.Delete(c);
        IngestResult second = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Empty(second.Added);
        Assert.Equal([b], second.Updated);
        Assert.Equal([c], second.Removed);
        Assert.Equal(1, second.Unchanged);
        Assert.Equal([a, b], rag.Files.Select(f => f.Path));
        Assert.Equal(aChunks, rag.Chunks.Where(x => x.SourcePath == a));
        Assert.Contains(rag.Chunks, x => x.SourcePath == b && x.Text.Contains("Blueberries"));
        Assert.DoesNotContain(rag.Chunks, x => x.SourcePath == c);
        Assert.Empty(await rag.SearchAsync("cherries", 3));
        Assert.Single(await rag.SearchAsync("blueberries", 3));

        IngestResult third = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal((0, 0, 0, 2, 0), (third.Added.Count, third.Updated.Count, third.Removed.Count, third.Unchanged, third.ChunksAdded));
    }

    [Fact]
    public async Task A_touched_file_with_the_same_content_is_recognised_by_its_hash()
    {
        using var folder = new TempFolder();
        string a = folder.Write("docs/a.txt", "Stable content stays.");
        using RagPipeline rag = Create();
        await rag.IngestAsync(folder.Combine("docs"));
        string hash = rag.Files[0].ContentHash;
        DateTime later = File.GetLastWriteTimeUtc(a).AddMinutes(5);
        File.SetLastWriteTimeUtc(a, later);
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(1, result.Unchanged);
        Assert.Empty(result.Updated);
        Assert.Equal(later, rag.Files[0].LastWriteTimeUtc); // the new time is remembered, so the next run skips hashing
        Assert.Equal(hash, rag.Files[0].ContentHash);
        Assert.Equal(64, hash.Length);
    }

    [Fact]
    public async Task A_same_size_change_is_found_through_the_time_and_the_hash()
    {
        using var folder = new TempFolder();
        string a = folder.Write("docs/a.txt", "Version one text.");
        using RagPipeline rag = Create();
        await rag.IngestAsync(folder.Combine("docs"));
        File.WriteAllText(a, "Version two text.");
        File.SetLastWriteTimeUtc(a, rag.Files[0].LastWriteTimeUtc.AddSeconds(2));
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal([a], result.Updated);
        Assert.Equal("Version two text.", Assert.Single(rag.Chunks).Text);
    }

    [Fact]
    public async Task Ingesting_two_folders_keeps_both_and_removal_only_touches_the_ingested_folder()
    {
        using var folder = new TempFolder();
        folder.Write("one/a.txt", "First folder text.");
        folder.Write("two/b.txt", "Second folder text.");
        using RagPipeline rag = Create();
        await rag.IngestAsync(folder.Combine("one"));
        await rag.IngestAsync(folder.Combine("two"));
        Assert.Equal(2, rag.Files.Count);
        File.Delete(folder.Combine("two", "b.txt"));
        IngestResult result = await rag.IngestAsync(folder.Combine("two"));
        Assert.True(result.FoundNothing);
        Assert.Single(result.Removed);
        Assert.EndsWith("a.txt", Assert.Single(rag.Files).Path);
    }

    [Fact]
    public async Task A_file_that_became_binary_is_removed_and_reported_as_skipped()
    {
        using var folder = new TempFolder();
        string a = folder.Write("docs/a.txt", "Text for now.");
        using RagPipeline rag = Create();
        await rag.IngestAsync(folder.Combine("docs"));
        File.WriteAllBytes(a, [1, 2, 0, 3]);
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal([a], result.Removed);
        Assert.Single(result.Skipped);
        Assert.Empty(rag.Files);
        Assert.Equal(0, rag.ChunkCount);
    }
}

public class UnreadableFileTests
{
    [Fact]
    public async Task A_broken_link_is_skipped_with_a_reason_and_the_rest_is_indexed()
    {
        using var folder = new TempFolder();
        folder.Write("docs/good.txt", "Readable words about owls.");
        string link = folder.Combine("docs", "dangling.txt");
        File.CreateSymbolicLink(link, folder.Combine("nowhere", "missing.txt"));
        var logger = new RecordingLogger();
        using RagPipeline rag = RagPipeline.CreateInMemory(new RagPipelineOptions { Logger = logger });
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.EndsWith("good.txt", Assert.Single(result.Added));
        SkippedFile skipped = Assert.Single(result.Skipped);
        Assert.Equal(link, skipped.Path);
        Assert.Contains("cannot be read", skipped.Reason);
        Assert.Contains(logger.Warnings, w => w.Contains("dangling.txt"));
    }

    [Fact]
    public async Task An_indexed_file_that_turns_into_a_broken_link_is_reported_as_removed()
    {
        using var folder = new TempFolder();
        string path = folder.Write("docs/a.txt", "Soon to be a broken link.");
        using RagPipeline rag = RagPipeline.CreateInMemory();
        await rag.IngestAsync(folder.Combine("docs"));
        File.Delete(path);
        File.CreateSymbolicLink(path, folder.Combine("nowhere.txt"));
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal([path], result.Removed);
        Assert.Equal(0, rag.ChunkCount);
        Assert.Equal(1, result.ChunksRemoved);
    }
}
