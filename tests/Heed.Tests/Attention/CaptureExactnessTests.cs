using Heed.Attention;
using Heed.Llama;
using Heed.TestModels;
using Xunit.Abstractions;

namespace Heed.Tests.Attention;

/// <summary>
/// The fused aggregation over captured Q/K equals llama.cpp's own softmax (kq_soft_max-L, flash
/// attention off) summed the same way, for every layer of a GQA model, with micro-batches
/// smaller than the prompt, and with the query decoded after the documents on a reused cache.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed class CaptureExactnessTests(TinyModelFixture fixture, ITestOutputHelper output)
{
    // The prompt the scores-only capture tests read too.
    internal const string Documents =
        "[1] the pass key is 48213 . remember it . [2] the quick brown fox jumps over the lazy dog . " +
        "[3] attention finds the answer in the context . [4] retrieval ranks the documents by attention mass .";
    internal const string Query = " what is the pass key ? the pass key is";

    [Theory]
    [InlineData(false, 1e-3)]
    [InlineData(true, 1e-2)]
    public void FusedMassMatchesLlamaCppsSoftmaxOnEveryLayer(bool halfPrecision, double tolerance) =>
        AssertFusedMassMatchesSoftmax(fixture.Model, halfPrecision, tolerance);

    public static TheoryData<string> Architectures => new(TinyLlama.Architectures);

    /// <summary>Every architecture capture allows is one the test writes and checks, and no other.</summary>
    [Fact]
    public void EveryAllowedArchitectureIsTested() =>
        Assert.Equal(TinyLlama.Architectures.Order(), AttentionCapture.SupportedArchitectures.Order());

    [Theory]
    [MemberData(nameof(Architectures))]
    public void FusedMassMatchesLlamaCppsSoftmaxOnEachAllowedArchitecture(string architecture)
    {
        string path = Path.Combine(fixture.Directory, $"tiny-{architecture}.gguf");
        TinyLlama.Write(path, seed: 77, architecture);
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = TinyModelFixture.GpuLayersFromEnvironment() });
        Assert.Equal(architecture, model.Architecture);
        AssertFusedMassMatchesSoftmax(model, halfPrecision: false, tolerance: 1e-3);
    }

    private void AssertFusedMassMatchesSoftmax(LlamaModel model, bool halfPrecision, double tolerance)
    {
        Assert.True(model.KvHeadCount < model.HeadCount, "the test model must use GQA");
        using var capture = new AttentionCapture(model, null,
            new LlamaContextOptions
            {
                ContextSize = 256, BatchSize = 64, MicroBatchSize = 8, Threads = 2,
                FlashAttention = FlashAttentionMode.Disabled,
                KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
            },
            new AttentionCaptureOptions { StoreHalfPrecision = halfPrecision, ReferenceSoftmax = true });

        int[] documents = model.Tokenizer.Tokenize(Documents);
        int[] query = model.Tokenizer.Tokenize(Query, addSpecial: false);
        Assert.True(documents.Length > 8 && query.Length > 8, "both parts must span several micro-batches");
        capture.Evaluate(documents, keepQueries: false, keepKeys: true);
        int queryStart = capture.NextPosition;
        capture.Evaluate(query, keepQueries: true, keepKeys: true);
        int total = documents.Length + query.Length;

        foreach (int layer in capture.Layers)
        {
            Assert.Equal(Enumerable.Range(0, total), capture.KeyPositions(layer));
            float[] fused = capture.Aggregate(layer, queryStart);
            double[] reference = capture.ReferenceMass(layer);
            Assert.True(reference.Length >= total);
            double relative = SoftmaxReference.RelativeError(fused, reference);
            output.WriteLine($"{model.Architecture} layer {layer} ({(halfPrecision ? "f16" : "f32")} rows): relative error {relative:E2}");
            Assert.True(relative < tolerance, $"layer {layer}: relative error {relative:E2} >= {tolerance:E0}");
            // Every query row spreads exactly one unit per head.
            Assert.Equal(query.Length * model.HeadCount, fused.Sum(), 2);
        }
    }

    [Fact]
    public void DroppedTokensLeaveTheCaptureLikeAFreshOne()
    {
        LlamaModel model = fixture.Model;
        int[] documents = model.Tokenizer.Tokenize(Documents);
        int[] query = model.Tokenizer.Tokenize(Query, addSpecial: false);
        int[] noise = model.Tokenizer.Tokenize(" the lazy dog sleeps", addSpecial: false);
        var options = new LlamaContextOptions { ContextSize = 256, BatchSize = 64, MicroBatchSize = 64, Threads = 2 };

        using var reused = new AttentionCapture(model, [0, 1], options);
        reused.Evaluate(documents, false, true);
        int start = reused.NextPosition;
        reused.Evaluate(noise, true, true);
        reused.RemoveTokens(start);
        reused.Evaluate(query, true, true);

        using var fresh = new AttentionCapture(model, [0, 1], options);
        fresh.Evaluate(documents, false, true);
        fresh.Evaluate(query, true, true);

        Assert.Equal(fresh.KeyPositions(1), reused.KeyPositions(1));
        float[] expected = fresh.Aggregate(1, start), actual = reused.Aggregate(1, start);
        for (int j = 0; j < expected.Length; j++)
        {
            Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-3f * Math.Max(1f, expected.Max()), $"key {j}: {expected[j]} vs {actual[j]}");
        }
        Assert.True(reused.BytesHeld > 0);
    }

    [Fact]
    public void BadArguments()
    {
        LlamaModel model = fixture.Model;
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionCapture(model, [model.LayerCount]));
        Assert.Throws<ArgumentException>(() => new AttentionCapture(model, [0, 0]));
        Assert.Throws<ArgumentException>(() => new AttentionCapture(model, []));
        Assert.Throws<ArgumentException>(() => new AttentionCapture(model, null, new LlamaContextOptions(), new AttentionCaptureOptions { ReferenceSoftmax = true }));
        using var capture = new AttentionCapture(model, [0], new LlamaContextOptions { ContextSize = 64, BatchSize = 64, MicroBatchSize = 64 });
        Assert.Throws<InvalidOperationException>(() => capture.Aggregate(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => capture.Aggregate(0, -1));
        capture.Evaluate(model.Tokenizer.Tokenize("the pass key"), false, true);
        Assert.Throws<HeedNativeException>(() => capture.Aggregate(1, 0)); // layer 1 is not captured
        Assert.All(capture.Aggregate(0, 0), m => Assert.Equal(0f, m)); // no query rows: no mass
    }
}
