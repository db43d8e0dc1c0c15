using System.Diagnostics;
using System.Text;
using Heed.Rag;
using Heed.Text;

namespace Heed.Tests.Rag;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LargeFileCollection
{
    public const string Name = "rag large files (alone, so memory readings are this test's)";
}

/// <summary>A 50 MB text file: streamed in bounded memory, indexed in bounded time, its last sentence findable.</summary>
[Collection(LargeFileCollection.Name)]
public sealed class LargeFileTests : IDisposable
{
    private const long TargetBytes = 50L * 1024 * 1024;
    private const string Needle = "The vault combination is zebra quartz nebula.";
    private readonly TempFolder _folder = new();
    private readonly string _path;

    public LargeFileTests()
    {
        _path = _folder.Combine("docs", "big.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        WriteLargeFile(_path);
    }

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Streaming_a_50_MB_file_through_the_loader_and_chunker_holds_only_a_few_MB()
    {
        Assert.True(new FileInfo(_path).Length >= TargetBytes);
        long baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        long chunks = 0, chars = 0;
        var chunker = new TextChunker(ApproximateTokenCounter.Count, new ChunkingOptions { MaxTokens = 256 });
        using (OpenedDocument document = new DocumentLoader().Open(_path, out SkippedFile? skipped)!)
        {
            Assert.Null(skipped);
            foreach (TextChunk chunk in chunker.Chunk(document.Reader, _path))
            {
                chars += chunk.Text.Length;
                if (++chunks % 5000 == 0)
                {
                    peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
                }
            }
        }
        Assert.True(chunks > 10_000, $"{chunks} chunks");
        Assert.True(chars >= TargetBytes, "the chunks cover the whole file");
        // the file as one string would be 100 MB (UTF-16); streaming keeps one block and one chunk
        Assert.True(peak < 16 * 1024 * 1024, $"live memory grew by {peak / 1024 / 1024} MB while streaming");
    }

    [Fact]
    public async Task A_50_MB_file_is_indexed_in_bounded_time_and_its_last_sentence_is_found()
    {
        var clock = Stopwatch.StartNew();
        using RagPipeline rag = RagPipeline.CreateInMemory(new RagPipelineOptions { Chunking = new ChunkingOptions { MaxTokens = 256 } });
        IngestResult result = await rag.IngestAsync(_folder.Combine("docs"));
        TimeSpan ingest = clock.Elapsed;
        Assert.Single(result.Added);
        IReadOnlyList<SearchHit> hits = await rag.SearchAsync("zebra quartz nebula vault", 3);
        Assert.Contains(Needle, hits[0].Chunk.Text);
        long needleOffset = new FileInfo(_path).Length - Needle.Length - 1; // ASCII file: byte offsets are char offsets
        Assert.InRange(needleOffset, hits[0].Chunk.StartOffset, hits[0].Chunk.EndOffset - Needle.Length);
        // linear work: a quadratic step would take hours on 50 MB; generous for a shared 2-core machine
        Assert.True(ingest < TimeSpan.FromSeconds(240), $"ingest took {ingest.TotalSeconds:F0} s");
    }

    private static void WriteLargeFile(string path)
    {
        var random = new Random(2024);
        string[] vocabulary = Enumerable.Range(0, 3000).Select(i => Syllables(random, i)).ToArray();
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        long written = 0;
        var sentence = new StringBuilder();
        while (written < TargetBytes)
        {
            sentence.Clear();
            int words = random.Next(6, 22);
            for (int w = 0; w < words; w++)
            {
                string word = vocabulary[random.Next(vocabulary.Length)];
                sentence.Append(w == 0 ? char.ToUpperInvariant(word[0]) + word[1..] : word).Append(' ');
            }
            sentence.Length--;
            sentence.Append(random.Next(40) == 0 ? ".\n\n" : ". ");
            writer.Write(sentence);
            written += sentence.Length;
        }
        writer.Write(Needle + "\n");
    }

    private static string Syllables(Random random, int seed)
    {
        const string consonants = "bcdfghklmnprstvw", vowels = "aeiou";
        var sb = new StringBuilder();
        for (int s = 0; s < 2 + seed % 3; s++)
        {
            sb.Append(consonants[random.Next(consonants.Length)]).Append(vowels[random.Next(vowels.Length)]);
        }
        return sb.ToString();
    }
}
