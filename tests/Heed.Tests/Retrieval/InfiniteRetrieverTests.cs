using System.Diagnostics;
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
    public async Task AnswersFromTheEvidence()
    {
        using InfiniteRetriever retriever = Create();
        AnswerResult answer = await retriever.AnswerAsync("what is the pass key ?", new StringReader(Haystack(40)));
        Assert.NotNull(answer.Answer);
        Assert.DoesNotContain("\n", answer.Answer);
        Assert.NotEmpty(answer.Retrieval.Evidence);
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
        RetrievalResult empty = await retriever.RetrieveAsync("key", "   \n\n  ");
        Assert.Empty(empty.Evidence);
        Assert.Equal(0, empty.ChunksProcessed);

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
        string cli = Path.Combine(RepositoryPaths.Root, "src", "Heed.Cli", "bin", "Release", "net10.0", "Heed.Cli.dll");
        Assert.True(File.Exists(cli), $"{cli} is missing; build the solution");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DOTNET_GCgen0size"] = "0x400000";
        foreach (string arg in new[] { cli, "ask", "--model", fixture.ModelPath, "--file", document, "--question", "what is the pass key ?",
                     "--context", "256", "--retrieve-only", "--json", "--gpu-layers", "0" })
        {
            start.ArgumentList.Add(arg);
        }
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(300_000));
        Assert.True(process.ExitCode == 0, $"heed ask failed: {errors}{output}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
