using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Heed.TestModels;

namespace Heed.Tests.Attention;

[Collection(TinyModelCollection.Name)]
public sealed class UnsupportedArchitectureTests(TinyModelFixture fixture)
{
    [Fact]
    public void ACaptureOfAModelThatNamesTensorsDifferentlyIsRefusedClearly()
    {
        string path = Path.Combine(fixture.Directory, "tiny-gpt2.gguf");
        TinyGpt2.Write(path);
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
        Assert.Equal("gpt2", model.Architecture);

        // llama.cpp itself runs the model ...
        using (LlamaContext context = model.CreateContext(new LlamaContextOptions { ContextSize = 64, BatchSize = 64, MicroBatchSize = 64 }))
        {
            context.Evaluate(model.Tokenizer.Tokenize("the pass key"));
            Assert.All(context.GetLogits(), v => Assert.True(float.IsFinite(v)));
        }
        // ... but Heed cannot read its attention, and says so.
        var e = Assert.Throws<NotSupportedException>(() => new AttentionCapture(model));
        Assert.Contains("attention capture is not supported for architecture gpt2", e.Message);
        Assert.Throws<NotSupportedException>(() => new InContextReranker(model));
        Assert.Throws<NotSupportedException>(() => new InfiniteRetriever(model, new InfiniteRetrieverOptions { ContextSize = 64, Layer = 0 }));
    }

    [Fact]
    public void AModelThatScalesQueriesAfterTheCapturePointIsRefusedClearly()
    {
        string path = Path.Combine(fixture.Directory, "tiny-mistral3-temperature.gguf");
        TinyLlama.Write(path, architecture: "mistral3", addMetadata: gguf => gguf
            .Add("mistral3.attention.temperature_scale", 0.1f)
            .Add("mistral3.rope.scaling.original_context_length", 64u));
        using LlamaModel model = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
        var e = Assert.Throws<NotSupportedException>(() => new AttentionCapture(model));
        Assert.Contains("attention temperature tuning", e.Message);
    }
}
