using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Heed.TestModels;
using Xunit.Abstractions;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// Heed's retrieval over a model LLamaSharp loaded gives what it gives over Heed's own engine,
/// and the capture through LLamaSharp's ggml equals LLamaSharp's llama.cpp's own softmax.
/// </summary>
public sealed class EngineEquivalenceTests(BothEnginesFixture engines, ITestOutputHelper output) : IClassFixture<BothEnginesFixture>
{
    private static readonly LlamaContextOptions Context = new() { Threads = 2, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32 };

    private static readonly string[] Documents =
    [
        "The apt tool installs packages and resolves their dependencies from the configured archives.",
        "Apache httpd reads its main configuration from httpd.conf when the server starts.",
        "The go command builds packages; go test runs the tests found in files ending in _test.go.",
        "A virtual host lets one Apache server answer for several domain names on one address.",
        "The garbage collector of Go runs concurrently with the program and frees unreachable memory.",
        "Log rotation keeps the size of the server's access and error logs bounded.",
    ];

    [Fact]
    public void CaptureThroughLLamaSharpEqualsItsLlamaCppSoftmax()
    {
        // The reference is LLamaSharp's own llama.cpp (flash attention off: kq_soft_max-L is in its
        // graph), read by the same capture; the fused kernel sums the captured Q and K rows.
        using var capture = new AttentionCapture(engines.LLamaSharp, null,
            Context with { ContextSize = 256, BatchSize = 64, MicroBatchSize = 16, FlashAttention = FlashAttentionMode.Disabled },
            new AttentionCaptureOptions { ReferenceSoftmax = true });
        int[] documents = engines.LLamaSharp.Tokenizer.Tokenize(string.Join(" ", Documents[..3]));
        int[] query = engines.LLamaSharp.Tokenizer.Tokenize(" Which command runs the tests of a Go package?", addSpecial: false);
        capture.Evaluate(documents, keepQueries: false, keepKeys: true);
        int queryStart = capture.NextPosition;
        capture.Evaluate(query, keepQueries: true, keepKeys: true);
        int total = documents.Length + query.Length;
        foreach (int layer in capture.Layers)
        {
            Assert.Equal(Enumerable.Range(0, total), capture.KeyPositions(layer));
            float[] fused = capture.Aggregate(layer, queryStart);
            double[] reference = capture.ReferenceMass(layer);
            double relative = SoftmaxReference.RelativeError(fused, reference);
            output.WriteLine($"layer {layer}: relative error {relative:E2} against LLamaSharp's kq_soft_max");
            Assert.True(relative < 1e-3, $"layer {layer}: relative error {relative:E2}");
        }
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public async Task IcrScoresThroughLLamaSharpEqualHeedsEngine(KvCacheType cache)
    {
        var options = new InContextRerankerOptions { ContextSize = 512, ContextOptions = Context with { KeyCacheType = cache, ValueCacheType = cache } };
        using var heed = new InContextReranker(engines.Heed, options);
        using var sharp = new InContextReranker(engines.LLamaSharp, options);
        double worst = 0;
        foreach (string query in new[] { "Which command runs the tests of a Go package?", "Where does Apache read its settings?" })
        {
            IReadOnlyList<RankedDocument> expected = await heed.RerankAsync(query, Documents);
            IReadOnlyList<RankedDocument> actual = await sharp.RerankAsync(query, Documents);
            Assert.Equal(expected.Select(d => d.Index), actual.Select(d => d.Index));
            // Relative to the query's largest score: single scores near zero have no scale of their own.
            double scale = expected.Max(d => Math.Abs(d.Score));
            Assert.True(scale > 0);
            foreach (RankedDocument e in expected)
            {
                double a = actual.Single(d => d.Index == e.Index).Score;
                worst = Math.Max(worst, Math.Abs(a - e.Score) / scale);
            }
        }
        output.WriteLine($"ICR ({cache} KV cache): max relative score difference, LLamaSharp vs Heed's engine: {worst:E2}");
        Assert.True(worst < 1e-3, $"max relative difference {worst:E2}");
    }

    [Fact]
    public async Task InfiniRetriThroughLLamaSharpReturnsTheSameEvidence()
    {
        const string filler = "The package manager keeps track of installed files. The manual page lists the options of each command. ";
        string document = string.Concat(Enumerable.Repeat(filler, 40)) + "The staging server's pass key is 83121. " +
                          string.Concat(Enumerable.Repeat(filler, 40));
        var options = new InfiniteRetrieverOptions { ContextSize = 512, ContextOptions = Context };
        using var heed = new InfiniteRetriever(engines.Heed, options);
        using var sharp = new InfiniteRetriever(engines.LLamaSharp, options);
        Assert.Equal(heed.Layer, sharp.Layer);

        const string question = "What is the pass key of the staging server?";
        AnswerResult expected = await heed.AnswerAsync(question, new StringReader(document));
        AnswerResult actual = await sharp.AnswerAsync(question, new StringReader(document));
        Assert.True(expected.Retrieval.ChunksProcessed > 2, "the document must span several chunks");
        Assert.Equal(expected.Retrieval.ChunksProcessed, actual.Retrieval.ChunksProcessed);
        Assert.Equal(expected.Retrieval.Evidence.Select(e => (e.Offset, e.Text)), actual.Retrieval.Evidence.Select(e => (e.Offset, e.Text)));
        Assert.Equal(expected.Answer, actual.Answer);
        output.WriteLine($"layer {sharp.Layer}, {actual.Retrieval.ChunksProcessed} chunks, evidence: " +
                         string.Join(" | ", actual.Retrieval.Evidence.Select(e => e.Text)) + $"; answer: {actual.Answer}");
    }
}
