using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;

namespace Heed.Tests.Ranking;

[Collection(TinyModelCollection.Name)]
public sealed class InContextRerankerTests(TinyModelFixture fixture)
{
    private static readonly string[] Documents =
    [
        "the quick brown fox jumps over the lazy dog .",
        "the pass key is 48213 . remember the pass key .",
        "attention finds the answer in the context .",
        "retrieval ranks the documents by the mass the query gives them .",
    ];

    private InContextReranker Create(int contextSize = 256, bool half = false) => new(fixture.Model,
        new InContextRerankerOptions
        {
            ContextSize = contextSize, StoreHalfPrecision = half,
            ContextOptions = new LlamaContextOptions { Threads = 2, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32 },
        });

    [Fact]
    public async Task ScoresEqualThoseComputedFromLlamaCppsOwnSoftmax()
    {
        const string query = "what is the pass key ?";
        using InContextReranker reranker = Create();
        IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, Documents);
        Assert.Equal(Documents.Length, ranked.Count);
        Assert.Equal(Enumerable.Range(0, Documents.Length), ranked.Select(r => r.Index).Order());

        // The reference: the same prompt decoded with flash attention off, llama.cpp's own
        // kq_soft_max summed per position, then the same calibration arithmetic.
        var options = new InContextRerankerOptions { ContextSize = 256 };
        RerankPrompt prompt = RerankPrompt.Build(fixture.Model.Tokenizer, options, query, Documents, reranker.ContextSize);
        RerankPrompt.Window window = Assert.Single(prompt.Windows);
        double[] Reference(int[] tail)
        {
            using var capture = new AttentionCapture(fixture.Model, null,
                new LlamaContextOptions
                {
                    ContextSize = 256, BatchSize = 256, MicroBatchSize = 256, Threads = 2, FlashAttention = FlashAttentionMode.Disabled,
                    KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
                },
                new AttentionCaptureOptions { ReferenceSoftmax = true });
            capture.Evaluate(window.Tokens, false, true);
            capture.Evaluate(tail, true, true);
            double[] total = new double[window.Tokens.Length];
            foreach (int layer in capture.Layers)
            {
                double[] mass = capture.ReferenceMass(layer);
                for (int j = 0; j < total.Length; j++)
                {
                    total[j] += mass[j] / tail.Length;
                }
            }
            return total;
        }
        double[] attention = Reference(prompt.QueryTail), calibration = Reference(prompt.CalibrationTail);
        foreach (RerankPrompt.DocumentSpan span in window.Documents)
        {
            double expected = InContextReranker.CalibratedScore(attention.AsSpan(span.Start, span.Length), calibration.AsSpan(span.Start, span.Length));
            double actual = ranked.Single(r => r.Index == span.Index).Score;
            Assert.True(Math.Abs(expected - actual) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"document {span.Index}: {actual} vs reference {expected}");
        }
    }

    [Fact]
    public void CalibrationDropsOutlierTokensAndSubtractsTheBias()
    {
        // calibrated = [0.2, 0.1, 0.3, -5.0]: mean -1.1, sample std 2.6; threshold -6.3 keeps all.
        Assert.Equal(-4.4, InContextReranker.CalibratedScore([1.2, 1.1, 1.3, -4.0], [1.0, 1.0, 1.0, 1.0]), 9);
        // Ten tokens at 1.0 and one at -20: mean -0.909…, std 6.33…, threshold -13.57: -20 is dropped.
        double[] attention = [.. Enumerable.Repeat(2.0, 10), -19.0];
        double[] calibration = [.. Enumerable.Repeat(1.0, 11)];
        Assert.Equal(10.0, InContextReranker.CalibratedScore(attention, calibration), 9);
        Assert.Equal(0.5, InContextReranker.CalibratedScore([0.75], [0.25]), 9);
    }

    [Fact]
    public async Task WindowsScoreEachDocumentAsItsOwnWindowWould()
    {
        string[] many = [.. Documents, .. Documents.Select(d => d.Replace("the", "a")), .. Documents.Select(d => d.ToUpperInvariant())];
        using InContextReranker reranker = Create(contextSize: 128);
        var options = new InContextRerankerOptions { ContextSize = 128 };
        RerankPrompt prompt = RerankPrompt.Build(fixture.Model.Tokenizer, options, "the pass key", many, reranker.ContextSize);
        Assert.True(prompt.Windows.Count > 1, "the test needs several windows");
        IReadOnlyList<RankedDocument> all = await reranker.RerankAsync("the pass key", many);
        Assert.Equal(many.Length, all.Count);

        RerankPrompt.Window second = prompt.Windows[1];
        string[] alone = second.Documents.Select(d => many[d.Index]).ToArray();
        IReadOnlyList<RankedDocument> separately = await reranker.RerankAsync("the pass key", alone);
        foreach (RankedDocument r in separately)
        {
            int original = second.Documents[r.Index].Index;
            Assert.Equal(r.Score, all.Single(a => a.Index == original).Score, 5);
        }
    }

    [Fact]
    public async Task TopKAndOrder()
    {
        using InContextReranker reranker = Create(half: true);
        IReadOnlyList<RankedDocument> top = await reranker.RerankAsync("the pass key", Documents, topK: 2);
        Assert.Equal(2, top.Count);
        Assert.True(top[0].Score >= top[1].Score);
    }

    [Fact]
    public async Task BadInput()
    {
        using InContextReranker reranker = Create(contextSize: 64);
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("", Documents));
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("  ", Documents));
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", []));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", ["fine", "   "]));
        Assert.Contains("Document 1", e.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => reranker.RerankAsync("key", Documents, topK: 0));
        string longQuery = string.Join(" ", Enumerable.Repeat("what is the pass key", 40));
        e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync(longQuery, Documents));
        Assert.Contains("context of", e.Message);
        string longDocument = string.Join(" ", Enumerable.Repeat("the lazy dog", 60));
        e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", [longDocument]));
        Assert.Contains("Split it", e.Message);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reranker.RerankAsync("key", Documents, null, cts.Token));
    }
}
