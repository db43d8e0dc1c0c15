using Heed.Attention;
using Heed.Llama;
using Heed.TestModels;

namespace Heed.Gpu.Tests;

/// <summary>
/// With every layer on the GPU, capture reads Q and K from device memory and the aggregation runs
/// on the GPU; the result must still equal llama.cpp's own softmax (kq_soft_max-L, flash attention
/// off) summed the same way, for every architecture capture allows.
/// </summary>
[Trait("Category", "Cuda")]
public sealed class GpuCaptureTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("heed-gpu-tests-");

    public static TheoryData<string> Architectures => new(TinyLlama.Architectures);

    [Theory]
    [MemberData(nameof(Architectures))]
    public void FusedMassOnTheGpuMatchesLlamaCppsSoftmax(string architecture)
    {
        Assert.True(DeviceTensor.IsCudaAvailable, "this test needs a CUDA build of libheed and a CUDA device");
        string path = Path.Combine(_folder.FullName, $"tiny-{architecture}.gguf");
        TinyLlama.Write(path, seed: 77, architecture);
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = -1 });
        using var capture = new AttentionCapture(model, null,
            new LlamaContextOptions
            {
                ContextSize = 256, BatchSize = 64, MicroBatchSize = 8, Threads = 2,
                FlashAttention = FlashAttentionMode.Disabled,
                KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
            },
            new AttentionCaptureOptions { ReferenceSoftmax = true });

        int[] documents = model.Tokenizer.Tokenize("[1] the pass key is 48213 . remember it . [2] the quick brown fox jumps over the lazy dog .");
        int[] query = model.Tokenizer.Tokenize(" what is the pass key ? the pass key is", addSpecial: false);
        capture.Evaluate(documents, keepQueries: false, keepKeys: true, TestContext.Current.CancellationToken);
        int queryStart = capture.NextPosition;
        capture.Evaluate(query, keepQueries: true, keepKeys: true, TestContext.Current.CancellationToken);

        foreach (int layer in capture.Layers)
        {
            float[] fused = capture.Aggregate(layer, queryStart, -1, AttentionDevice.Cuda);
            double[] reference = capture.ReferenceMass(layer);
            double relative = SoftmaxReference.RelativeError(fused, reference);
            Assert.True(relative < 1e-3, $"{architecture} layer {layer}: relative error {relative:E2} against llama.cpp's softmax");
        }
    }

    /// <summary>
    /// Stopping each graph at the captured layer on the GPU (a split of the CUDA backend cut short)
    /// changes no mass, and the same context then generates as a fresh one does.
    /// </summary>
    [Fact]
    public async Task ScoresOnlyOnTheGpuGivesTheWholeGraphsMassesAndLeavesGenerationIntact()
    {
        Assert.True(DeviceTensor.IsCudaAvailable, "this test needs a CUDA build of libheed and a CUDA device");
        CancellationToken ct = TestContext.Current.CancellationToken;
        string path = Path.Combine(_folder.FullName, "tiny-llama.gguf");
        TinyLlama.Write(path, seed: 77);
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = -1 });
        var options = new LlamaContextOptions
        {
            ContextSize = 256, BatchSize = 64, MicroBatchSize = 8, Threads = 2, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
        };
        const string Documents = "[1] the pass key is 48213 . remember it . [2] the quick brown fox jumps over the lazy dog .";
        const string Query = " what is the pass key ? the pass key is";
        float[] Scores(AttentionCapture capture)
        {
            capture.Evaluate(model.Tokenizer.Tokenize(Documents), keepQueries: false, keepKeys: true, ct);
            int queryStart = capture.NextPosition;
            capture.Evaluate(model.Tokenizer.Tokenize(Query, addSpecial: false), keepQueries: true, keepKeys: true, ct);
            return capture.Aggregate(0, queryStart, -1, AttentionDevice.Cuda);
        }
        async Task<string> Generate(IInferenceContext context)
        {
            var text = new System.Text.StringBuilder();
            await foreach (string piece in context.GenerateAsync(Documents + Query, new GenerationOptions { MaxTokens = 12 }, ct))
            {
                text.Append(piece);
            }
            return text.ToString();
        }

        using var whole = new AttentionCapture(model, [0], options);
        using var stopped = new AttentionCapture(model, [0], options, new AttentionCaptureOptions { ScoresOnly = true });
        float[] expected = Scores(whole), actual = Scores(stopped);
        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= 1e-5 * expected.Max(), $"scores-only masses differ by up to {worst:E2}");

        using IInferenceContext fresh = model.CreateContext(options);
        string freshText = await Generate(fresh);
        Assert.NotEmpty(freshText);
        Assert.Equal(freshText, await Generate(stopped.Context));
    }

    public void Dispose() => _folder.Delete(recursive: true);
}
