using Heed.Attention;
using Heed.Llama;
using Heed.TestModels;
using Xunit.Abstractions;

namespace Heed.Tests.Attention;

/// <summary>
/// A scores-only capture (each decode stops once the captured rows are copied) gives the rows and
/// masses of a capture that runs the whole graph, and llama.cpp's own softmax agrees with it; it
/// really skips the rest of the graph; and the context generates afterwards as a fresh one does.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed class ScoresOnlyCaptureTests(TinyModelFixture fixture, ITestOutputHelper output)
{
    private const string Documents = CaptureExactnessTests.Documents, Query = CaptureExactnessTests.Query;
    private const string Calibration = " N/A ? the answer is";

    // Micro-batches smaller than the prompt: every ubatch graph must stop on its own.
    private static LlamaContextOptions ContextOptions(bool flashAttention = true) => new()
    {
        ContextSize = 256, BatchSize = 64, MicroBatchSize = 8, Threads = 2,
        FlashAttention = flashAttention ? FlashAttentionMode.Auto : FlashAttentionMode.Disabled,
        KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
    };

    // The documents, a calibration tail, then (on the reused cache) the query tail, as ICR and InfiniRetri decode them.
    private (int QueryStart, int Total) ScoreLikeIcr(AttentionCapture capture)
    {
        LlamaModel model = fixture.Model;
        capture.Evaluate(model.Tokenizer.Tokenize(Documents), keepQueries: false, keepKeys: true);
        int tailStart = capture.NextPosition;
        capture.Evaluate(model.Tokenizer.Tokenize(Calibration, addSpecial: false), keepQueries: true, keepKeys: true);
        capture.RemoveTokens(tailStart);
        int[] query = model.Tokenizer.Tokenize(Query, addSpecial: false);
        capture.Evaluate(query, keepQueries: true, keepKeys: true);
        return (tailStart, tailStart + query.Length);
    }

    [Theory]
    [InlineData(new[] { 0, 1 })] // every layer: only the output norm and logits are skipped
    [InlineData(new[] { 0 })]    // the top layer is skipped too
    [InlineData(new[] { 1 })]    // the tail's layer-1 rows need layer 0's cache, written by stopped decodes
    public void MassesEqualThoseOfTheWholeGraph(int[] layers)
    {
        using var whole = new AttentionCapture(fixture.Model, layers, ContextOptions());
        using var stopped = new AttentionCapture(fixture.Model, layers, ContextOptions(), new AttentionCaptureOptions { ScoresOnly = true });
        (int queryStart, int total) = ScoreLikeIcr(whole);
        Assert.Equal((queryStart, total), ScoreLikeIcr(stopped));
        foreach (int layer in layers)
        {
            Assert.Equal(Enumerable.Range(0, total), stopped.KeyPositions(layer));
            float[] expected = whole.Aggregate(layer, queryStart), actual = stopped.Aggregate(layer, queryStart);
            double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            output.WriteLine($"layers [{string.Join(",", layers)}], layer {layer}: largest difference {worst:E2} (total mass {expected.Sum():F3})");
            Assert.True(worst <= 1e-6 * expected.Max(), $"layer {layer}: scores-only masses differ by up to {worst:E2}");
        }
    }

    [Fact]
    public void MassesMatchLlamaCppsSoftmaxBelowTheLayerWhereTheGraphStops()
    {
        LlamaModel model = fixture.Model;
        using var capture = new AttentionCapture(model, [0, 1], ContextOptions(flashAttention: false),
            new AttentionCaptureOptions { ScoresOnly = true, ReferenceSoftmax = true });
        int[] documents = model.Tokenizer.Tokenize(Documents), query = model.Tokenizer.Tokenize(Query, addSpecial: false);
        capture.Evaluate(documents, keepQueries: false, keepKeys: true);
        int queryStart = capture.NextPosition;
        capture.Evaluate(query, keepQueries: true, keepKeys: true);
        // Layer 0 ran whole, its softmax included. Layer 1's own softmax is no reference here: it
        // reads layer 1's cache, which the stopped decodes of the documents never wrote (the
        // captured rows do not come from the cache, so the fused mass is unaffected).
        double relative = SoftmaxReference.RelativeError(capture.Aggregate(0, queryStart), capture.ReferenceMass(0));
        output.WriteLine($"layer 0: relative error against kq_soft_max {relative:E2}");
        Assert.True(relative < 1e-3, $"layer 0: relative error {relative:E2}");
    }

    [Fact]
    public void TheGraphStopsBeforeTheLogits()
    {
        int[] tokens = fixture.Model.Tokenizer.Tokenize(Documents);
        using var whole = new AttentionCapture(fixture.Model, [0], ContextOptions());
        using var stopped = new AttentionCapture(fixture.Model, [0], ContextOptions(), new AttentionCaptureOptions { ScoresOnly = true });
        whole.Evaluate(tokens, keepQueries: false, keepKeys: true);
        stopped.Evaluate(tokens, keepQueries: false, keepKeys: true);
        float[] computed = ((LlamaContext)whole.Context).GetLogits(), skipped = ((LlamaContext)stopped.Context).GetLogits();
        // The same decode with the graph run to the end gives real logits; the stopped one never computed them.
        Assert.NotEqual(computed, skipped);
        // A decode that keeps nothing is not stopped: it computes the logits.
        stopped.Clear();
        stopped.Evaluate(tokens, keepQueries: false, keepKeys: false);
        float[] recomputed = ((LlamaContext)stopped.Context).GetLogits();
        Assert.True(computed.Zip(recomputed, (a, b) => Math.Abs(a - b)).Max() < 1e-4f, "a decode that keeps nothing must run to the logits");
    }

    [Fact]
    public async Task TheContextGeneratesAfterwardsAsAFreshOne()
    {
        var greedy = new GenerationOptions { MaxTokens = 12 };
        string expected = await Generate(fixture.Model.CreateContext(ContextOptions()));
        output.WriteLine($"generated: '{expected}'");
        Assert.NotEmpty(expected);
        using var capture = new AttentionCapture(fixture.Model, [0], ContextOptions(), new AttentionCaptureOptions { ScoresOnly = true });
        (int queryStart, _) = ScoreLikeIcr(capture);
        float[] scores = capture.Aggregate(0, queryStart);
        int keys = capture.GetStats(0).Keys;
        Assert.Equal(expected, await Generate(capture.Context, dispose: false));
        // Generation is neither captured nor stopped, and the capture scores as before afterwards.
        Assert.Equal(keys, capture.GetStats(0).Keys);
        capture.Clear();
        ScoreLikeIcr(capture);
        Assert.Equal(scores, capture.Aggregate(0, queryStart));

        async Task<string> Generate(IInferenceContext context, bool dispose = true)
        {
            var text = new System.Text.StringBuilder();
            await foreach (string piece in context.GenerateAsync(Documents + Query, greedy, default))
            {
                text.Append(piece);
            }
            if (dispose)
            {
                context.Dispose();
            }
            return text.ToString();
        }
    }
}
