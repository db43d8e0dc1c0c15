using Heed.Rag;
using Heed.Text;

namespace Heed.Tests.Rag;

public class ConcurrencyTests
{
    private static RagPipelineOptions Options() => new()
    {
        TokenCounter = TestCounters.Words,
        Chunking = new ChunkingOptions { MaxTokens = 12 },
    };

    private static void WriteFolder(TempFolder folder, string name, int files)
    {
        for (int f = 0; f < files; f++)
        {
            string text = string.Join(" ", Enumerable.Range(0, 30).Select(s => $"In {name} file {f} sentence {s} mentions topic{(f * 31 + s) % 17}."));
            folder.Write(Path.Combine(name, $"f{f}.txt"), text);
        }
    }

    [Fact]
    public async Task Parallel_ingests_and_searches_neither_lose_nor_duplicate_chunks()
    {
        using var folder = new TempFolder();
        WriteFolder(folder, "left", 6);
        WriteFolder(folder, "right", 6);
        // what each folder gives on its own, ingested alone
        int expected = 0;
        foreach (string name in new[] { "left", "right" })
        {
            using RagPipeline alone = RagPipeline.CreateInMemory(Options());
            expected += (await alone.IngestAsync(folder.Combine(name))).TotalChunks;
        }

        string index = folder.Combine("index.heed");
        using RagPipeline rag = await RagPipeline.OpenAsync(index, Options());
        var tasks = new List<Task>
        {
            Task.Run(() => rag.IngestAsync(folder.Combine("left"))),
            Task.Run(() => rag.IngestAsync(folder.Combine("right"))),
            Task.Run(() => rag.IngestAsync(folder.Combine("left"))),
            Task.Run(() => rag.IngestAsync(folder.Combine("right"))),
        };
        int searches = 0;
        for (int q = 0; q < 16; q++)
        {
            int topic = q;
            tasks.Add(Task.Run(async () =>
            {
                for (int i = 0; i < 10; i++)
                {
                    IReadOnlyList<SearchHit> hits = await rag.SearchAsync($"topic{topic % 17} sentence", 10);
                    Assert.Equal(hits.Count, hits.Select(h => (h.SourcePath, h.Chunk.Ordinal)).Distinct().Count());
                    Interlocked.Increment(ref searches);
                }
            }));
        }
        await Task.WhenAll(tasks);

        Assert.Equal(160, searches);
        Assert.Equal(12, rag.Files.Count);
        Assert.Equal(expected, rag.ChunkCount);
        Assert.Equal(rag.ChunkCount, rag.Chunks.Select(c => (c.SourcePath, c.Ordinal)).Distinct().Count());
        using RagPipeline reopened = await RagPipeline.OpenAsync(index, Options());
        Assert.Equal(expected, reopened.ChunkCount);
    }
}
