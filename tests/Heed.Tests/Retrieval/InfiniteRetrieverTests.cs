using System.Text;
using System.Text.Json;
using Heed.Llama;
using Heed.Retrieval;

namespace Heed.Tests.Retrieval;

[Collection(TinyModelCollection.Name)]
public sealed class InfiniteRetrieverTests(TinyModelFixture fixture)
{
    private static string Haystack(int sentences, int seed = 5)
    {
        var random = new Random(seed);
        string[] filler =
        [
            "The quick brown fox jumps over the lazy dog.", "A model reads the documents and the query.",
            "Attention finds the answer in the context.", "The grass is green and the sky is blue.",
            "Retrieval ranks the documents by attention mass.",
        ];
        var text = new StringBuilder();
        for (int i = 0; i < sentences; i++)
        {
            text.Append(filler[random.Next(filler.Length)]).Append(i % 7 == 6 ? "\n\n" : " ");
        }
        return text.ToString();
    }

    private InfiniteRetriever Create() => new(fixture.Model, new InfiniteRetrieverOptions
    {
        ContextSize = 256, CacheTokens = 48, ContextOptions = new LlamaContextOptions { Threads = 2 },
    });

    [Theory]
    [InlineData(0)] // the layer above is never computed
    [InlineData(1)] // the top layer: only the logits are skipped
    public async Task StoppingAtTheScoringLayerChangesNeitherTheEvidenceNorTheAnswer(int layer)
    {
        string text = Haystack(200);
        InfiniteRetriever Make(bool stop) => new(fixture.Model, new InfiniteRetrieverOptions
        {
            ContextSize = 256, CacheTokens = 48, Layer = layer, StopAtScoringLayer = stop, ContextOptions = new LlamaContextOptions { Threads = 2 },
        });
        using InfiniteRetriever everyLayer = Make(stop: false), stopped = Make(stop: true);
        RetrievalResult expected = await everyLayer.RetrieveAsync("what is the pass key ?", text);
        RetrievalResult actual = await stopped.RetrieveAsync("what is the pass key ?", text);
        Assert.True(actual.ChunksProcessed > 3, $"{actual.ChunksProcessed} chunks");
        Assert.Equal(expected.Evidence.Select(e => e.Offset), actual.Evidence.Select(e => e.Offset));
        Assert.All(expected.Evidence.Zip(actual.Evidence), p => Assert.Equal(p.First.Score, p.Second.Score, 1e-6));
        // The answer is generated on the same context that read the document scores-only.
        Assert.Equal(await everyLayer.AnswerFromEvidenceAsync("what is the pass key ?", expected),
            await stopped.AnswerFromEvidenceAsync("what is the pass key ?", actual));
    }

    [Fact]
    public async Task EvidenceIsSourceTextAtItsOffsetsAndFitsTheCache()
    {
        string text = Haystack(300);
        using InfiniteRetriever retriever = Create();
        var reports = new List<RetrievalProgress>();
        RetrievalResult result = await retriever.RetrieveAsync("what is the pass key ?", text, new SyncProgress<RetrievalProgress>(reports.Add));
        Assert.True(result.ChunksProcessed > 5, $"{result.ChunksProcessed} chunks");
        Assert.Equal(result.ChunksProcessed, reports.Count);
        Assert.Equal(reports.Select(r => r.CharactersRead).Order(), reports.Select(r => r.CharactersRead));
        Assert.Equal(text.Length, reports[^1].CharactersRead);
        Assert.NotEmpty(result.Evidence);
        Assert.All(result.Evidence, e => Assert.Equal(e.Text, text.Substring((int)e.Offset, e.Length)));
        Assert.Equal(result.Evidence.OrderBy(e => e.Offset), result.Evidence);
        int cacheTokens = result.Evidence.Sum(e => fixture.Model.Tokenizer.CountTokens(" " + e.Text));
        Assert.InRange(cacheTokens, 1, 48);
        Assert.True(result.TokensProcessed > 2000);
    }

    [Fact]
    public async Task ATextWithoutSentenceEndsIsCutIntoPiecesThatFit()
    {
        string text = string.Join(" ", Enumerable.Range(0, 3000).Select(i => $"word{i % 97}"));
        using InfiniteRetriever retriever = new(fixture.Model, new InfiniteRetrieverOptions
        {
            ContextSize = 256, CacheTokens = 48, MaxSentenceTokens = 24, ContextOptions = new LlamaContextOptions { Threads = 2 },
        });
        RetrievalResult result = await retriever.RetrieveAsync("which word ?", text);
        Assert.True(result.ChunksProcessed > 10);
        Assert.NotEmpty(result.Evidence);
        Assert.All(result.Evidence, e =>
        {
            Assert.Equal(e.Text, text.Substring((int)e.Offset, e.Length));
            Assert.InRange(fixture.Model.Tokenizer.CountTokens(" " + e.Text), 1, 24);
        });
    }

    [Fact]
    public void PhraseScoresAreABoxFilter()
    {
        Assert.Equal([3.0, 6.0, 9.0, 7.0], InfiniteRetriever.PhraseScores([1, 2, 3, 4], 3));
        Assert.Equal([1.0, 2.0], InfiniteRetriever.PhraseScores([1, 2], 1));
    }

    [Fact]
    public void NeighboursAreNeighboursInTheDocumentNotInTheCandidateList()
    {
        // The cache holds sentences 3 and 10 of the document; the chunk starts at sentence 40.
        // Sentence 10 holds the top phrase: its neighbours are sentences 9 and 11, neither in play,
        // so nothing comes along (the next candidate, sentence 40, is far away in the document).
        List<InfiniteRetriever.CacheCandidate> candidates =
        [
            new(3, 5, 0.10, false), new(10, 5, 0.90, true), new(40, 5, 0.20, false), new(41, 5, 0.30, false), new(42, 5, 0.05, false),
        ];
        Assert.Equal([1], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 1, budget: 100));

        // When the chunk starts right after the cached sentence, that sentence is its neighbour.
        candidates[2] = new(11, 5, 0.20, false);
        Assert.Equal([1, 2], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 1, budget: 100));

        // Two sentences away with two neighbours per side.
        candidates[2] = new(12, 5, 0.20, false);
        Assert.Equal([1], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 1, budget: 100));
        Assert.Equal([1, 2], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 2, budget: 100));
    }

    [Fact]
    public void CacheTakesTheBestScoresFirstUntilTheBudgetIsFullAndKeepsDocumentOrder()
    {
        List<InfiniteRetriever.CacheCandidate> candidates =
        [
            new(0, 10, 0.50, true), new(5, 30, 0.90, true), new(9, 10, 0.70, true), new(20, 10, 0.80, false), new(30, 10, 0.10, true),
        ];
        // Best first: 0.90 (30 tokens), 0.70 (10), 0.50 (10) fill 50 tokens; 0.10 does not fit;
        // 0.80 holds no top phrase and is nobody's neighbour.
        Assert.Equal([0, 1, 2], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 0, budget: 50));
        Assert.Equal([1, 2], InfiniteRetriever.SelectCache(candidates, neighbourSentences: 0, budget: 40));
        Assert.Empty(InfiniteRetriever.SelectCache(candidates, neighbourSentences: 0, budget: 5));
    }

    [Theory]
    [InlineData(3.0, false)] // above any phrase score (PhraseWidth tokens, each a share of at most 1)
    [InlineData(-3.0, true)] // below any
    public async Task AnswerAsyncGeneratesOnlyWhenSomethingWasFound(double threshold, bool found)
    {
        using InfiniteRetriever retriever = new(fixture.Model, new InfiniteRetrieverOptions
        {
            ContextSize = 256, CacheTokens = 48, NotFoundThreshold = threshold, ContextOptions = new LlamaContextOptions { Threads = 2 },
        });
        AnswerResult answer = await retriever.AnswerAsync("what is the pass key ?", new StringReader(Haystack(40)));
        Assert.Equal(found, answer.Retrieval.Found);
        Assert.NotEmpty(answer.Retrieval.Evidence);
        Assert.Equal(found, answer.Answer is not null);
    }

    [Fact]
    public async Task EmptyWhitespaceAndBinaryDocumentsAreRefused()
    {
        using InfiniteRetriever retriever = Create();
        string empty = Path.Combine(fixture.Directory, "empty.txt");
        File.WriteAllText(empty, "");
        Assert.Contains("is empty", (await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveFileAsync("key", empty))).Message);

        string blank = Path.Combine(fixture.Directory, "blank.txt");
        File.WriteAllText(blank, "  \n\t\n   \n");
        Assert.Contains("whitespace", (await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveFileAsync("key", blank))).Message);
        Assert.Contains("whitespace", (await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveAsync("key", "   \n\n  "))).Message);
        Assert.Contains("whitespace", (await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveAsync("key", new StringReader(" \n ")))).Message);

        string binary = Path.Combine(fixture.Directory, "binary.txt");
        File.WriteAllBytes(binary, [.. "The pass key is 7. "u8, 0, 1, 2, 0, .. "more text"u8]);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveFileAsync("key", binary));
        Assert.Contains("binary", e.Message);
        Assert.Contains(binary, e.Message);

        // A UTF-16 file (NUL bytes, but a byte-order mark) is text, as the RAG loader reads it.
        string utf16 = Path.Combine(fixture.Directory, "utf16.txt");
        File.WriteAllText(utf16, Haystack(20), System.Text.Encoding.Unicode);
        RetrievalResult fromUtf16 = await retriever.RetrieveFileAsync("key", utf16);
        Assert.All(fromUtf16.Evidence, ev => Assert.Equal(ev.Text, Haystack(20).Substring((int)ev.Offset, ev.Length)));
    }

    [Fact]
    public async Task BadInputAndCancellation()
    {
        using InfiniteRetriever retriever = Create();
        await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveAsync("", "text."));
        await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveAsync("  ", "text."));
        string longQuestion = string.Join(" ", Enumerable.Repeat("what is the pass key", 60));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveAsync(longQuestion, "text."));
        Assert.Contains("context", e.Message);
        await Assert.ThrowsAsync<FileNotFoundException>(() => retriever.RetrieveFileAsync("key", Path.Combine(fixture.Directory, "missing.txt")));
        await Assert.ThrowsAsync<ArgumentException>(() => retriever.RetrieveFileAsync("key", fixture.Directory));

        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<RetrievalProgress>(p =>
        {
            if (p.ChunksDone == 2)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => retriever.RetrieveAsync("key", Haystack(300), progress, cts.Token));
        RetrievalResult after = await retriever.RetrieveAsync("key", Haystack(20)); // usable again
        Assert.NotEmpty(after.Evidence);
    }

    [Fact]
    [Trait("Category", "Memory")]
    public void PeakMemoryStaysFlatFrom10KTo100KTokens()
    {
        // Each length runs in its own `heed ask` process so that its peak resident memory is its own.
        // The tiny model's small vocabulary makes ~23 tokens a sentence: ~25K and ~250K tokens.
        // The GC's gen0 budget grows with the allocation rate and would otherwise add ~13 MB of
        // garbage headroom to the longer run; a fixed 4 MB budget measures the retriever itself.
        long Peak(int sentences)
        {
            string path = Path.Combine(fixture.Directory, $"haystack-{sentences}.txt");
            File.WriteAllText(path, Haystack(sentences));
            JsonElement result = RunAsk(path);
            long tokens = result.GetProperty("tokens").GetInt64();
            Assert.True(tokens >= sentences * 9, $"{tokens} tokens for {sentences} sentences");
            return result.GetProperty("peakResidentBytes").GetInt64();
        }
        long small = Peak(1_100);
        long large = Peak(11_000);
        Assert.True(large <= 1.2 * small, $"peak resident memory {large / 1e6:F1} MB at 100K tokens vs {small / 1e6:F1} MB at 10K");
    }

    private JsonElement RunAsk(string document)
    {
        AskProcess.Result ask = AskProcess.Run(
            ["--model", fixture.ModelPath, "--file", document, "--question", "what is the pass key ?", "--context", "256", "--retrieve-only", "--json", "--gpu-layers", "0"],
            new Dictionary<string, string> { ["DOTNET_GCgen0size"] = "0x400000" });
        // 3: not found (a haystack without an answer may come out either way); this test measures memory.
        Assert.True(ask.ExitCode is 0 or 3, $"heed ask failed: {ask.Errors}{ask.Output}");
        return JsonDocument.Parse(ask.Output).RootElement.Clone();
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
