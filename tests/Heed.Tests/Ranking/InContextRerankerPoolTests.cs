using Heed.Llama;
using Heed.Ranking;

namespace Heed.Tests.Ranking;

[Collection(TinyModelCollection.Name)]
public sealed class InContextRerankerPoolTests(TinyModelFixture fixture)
{
    private static readonly string[] Words =
        ["fox", "dog", "pass", "key", "river", "stone", "attention", "query", "cache", "window", "paper", "green", "seven", "lunch", "pilot"];

    // Distinct queries and document sets, made from a seed.
    private static (string Query, string[] Documents) Case(int seed, int documents = 4, int words = 3)
    {
        var random = new Random(seed);
        string Sentence(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Words[random.Next(Words.Length)])) + " .";
        return ($"what is the {Words[random.Next(Words.Length)]} {seed} ?", Enumerable.Range(0, documents).Select(_ => Sentence(words + random.Next(4))).ToArray());
    }

    private InContextRerankerOptions Options(int contextSize = 256, int threads = 2) => new()
    {
        ContextSize = contextSize,
        ContextOptions = new LlamaContextOptions { Threads = threads },
    };

    [Theory]
    [InlineData(false)] // one window per call
    [InlineData(true)]  // several windows per call, merged through the finalists' window
    public async Task PooledScoresAreTheSingleRerankersBitForBit(bool severalWindows)
    {
        const int contextSize = 256;
        (string Query, string[] Documents)[] cases = Enumerable.Range(0, 12)
            .Select(i => severalWindows ? Case(100 + i, documents: 8, words: 8) : Case(100 + i, documents: 3, words: 2)).ToArray();
        foreach ((string query, string[] documents) in cases)
        {
            int windows = RerankPrompt.Build(fixture.Model, Options(contextSize), query, contextSize).Pack(documents, Enumerable.Range(0, documents.Length).ToArray()).Count;
            Assert.True(severalWindows ? windows > 1 : windows == 1, $"{windows} windows at {contextSize} tokens");
        }

        // The reference: today's path, one reranker with two threads, one call after another.
        var expected = new List<IReadOnlyList<RankedDocument>>();
        using (var single = new InContextReranker(fixture.Model, Options(contextSize, threads: 2)))
        {
            foreach ((string query, string[] documents) in cases)
            {
                expected.Add(await single.RerankAsync(query, documents));
            }
        }
        Assert.True(expected.Select(e => e[0].Score).Distinct().Count() > 1, "the cases should not all score alike");

        // The pool: three contexts of one thread each (threads 0 splits the cores), every call at once.
        using var pool = new InContextRerankerPool(fixture.Model, 3, Options(contextSize, threads: 0));
        Assert.Equal(Math.Max(1, Environment.ProcessorCount / 3), pool.Options.ContextOptions.Threads);
        IReadOnlyList<RankedDocument>[] pooled = await Task.WhenAll(cases.Select(c => Task.Run(() => pool.RerankAsync(c.Query, c.Documents))));

        Assert.InRange(pool.Created, 1, 3);
        Assert.Equal(0, pool.InUse);
        for (int i = 0; i < cases.Length; i++)
        {
            Assert.Equal(expected[i].Select(d => (d.Index, d.Score)), pooled[i].Select(d => (d.Index, d.Score)));
        }
    }

    [Fact]
    public async Task ManyConcurrentCallsAreEachAnsweredOnce()
    {
        using var pool = new InContextRerankerPool(fixture.Model, 2, Options());
        const int calls = 40;
        var answers = new int[calls];
        IReadOnlyList<RankedDocument>[] results = await Task.WhenAll(Enumerable.Range(0, calls).Select(i => Task.Run(async () =>
        {
            (string query, string[] documents) = Case(i % 7);
            IReadOnlyList<RankedDocument> ranked = await pool.RerankAsync(query, documents, topK: 3);
            Interlocked.Increment(ref answers[i]);
            return ranked;
        })));

        Assert.All(answers, a => Assert.Equal(1, a));
        Assert.All(results, r => Assert.Equal(3, r.Count));
        Assert.InRange(pool.Created, 1, 2);
        Assert.Equal(0, pool.InUse);
        // The same call gives the same answer whichever context served it.
        for (int i = 7; i < calls; i++)
        {
            Assert.Equal(results[i % 7].Select(d => (d.Index, d.Score)), results[i].Select(d => (d.Index, d.Score)));
        }
    }

    [Fact]
    public async Task CancellationGivesTheRerankerBack()
    {
        using var pool = new InContextRerankerPool(fixture.Model, 1, Options());
        (string query, string[] documents) = Case(7, documents: 12, words: 8); // several windows: a call long enough to cancel

        // Cancelled before it starts: nothing is leased.
        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pool.RerankAsync(query, documents, null, cancelled.Token));
        }
        Assert.Equal(0, pool.InUse);

        // A caller that gives up while waiting for the only reranker, and one cancelled while it runs.
        using var running = new CancellationTokenSource();
        Task<IReadOnlyList<RankedDocument>> first = pool.RerankAsync(query, documents, null, running.Token);
        using var waiting = new CancellationTokenSource();
        Task<IReadOnlyList<RankedDocument>> second = pool.RerankAsync(query, documents, null, waiting.Token);
        await waiting.CancelAsync();
        await running.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second);
        try
        {
            await first; // it may have finished before the cancellation reached it
        }
        catch (OperationCanceledException)
        {
        }
        Assert.Equal(0, pool.InUse);

        // The only reranker is free again and scores as a fresh one does.
        IReadOnlyList<RankedDocument> after = await pool.RerankAsync(query, documents).WaitAsync(TimeSpan.FromMinutes(2));
        using var fresh = new InContextReranker(fixture.Model, pool.Options);
        IReadOnlyList<RankedDocument> expected = await fresh.RerankAsync(query, documents);
        Assert.Equal(expected.Select(d => (d.Index, d.Score)), after.Select(d => (d.Index, d.Score)));
        Assert.Equal(1, pool.Created);
    }

    [Fact]
    public async Task BadInputFailsBeforeAnyContextIsMade()
    {
        using var pool = new InContextRerankerPool(fixture.Model, 2, Options());
        await Assert.ThrowsAsync<ArgumentException>(() => pool.RerankAsync(" ", ["a document ."]));
        await Assert.ThrowsAsync<ArgumentException>(() => pool.RerankAsync("key", []));
        await Assert.ThrowsAsync<ArgumentException>(() => pool.RerankAsync("key", ["a document .", ""]));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pool.RerankAsync("key", ["a document ."], topK: 0));
        await Assert.ThrowsAsync<ArgumentNullException>(() => pool.RerankAsync(null!, ["a document ."]));
        Assert.Equal(0, pool.Created);
        Assert.Equal(0, pool.InUse);

        Assert.Throws<ArgumentOutOfRangeException>(() => new InContextRerankerPool(fixture.Model, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InContextRerankerPool(fixture.Model, 257));
        Assert.Throws<ArgumentNullException>(() => new InContextRerankerPool(null!, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InContextRerankerPool(fixture.Model, 1, new InContextRerankerOptions { ContextSize = -1 }));

        pool.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.RerankAsync("key", ["a document ."]));
    }
}
