using System.Numerics.Tensors;
using Heed.AI;
using Microsoft.Extensions.AI;

namespace Heed.Tests.AI;

[Collection(TinyModelCollection.Name)]
public sealed class LlamaEmbeddingGeneratorTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task EmbeddingsAreUnitLengthDeterministicAndDistinct()
    {
        using var generator = new LlamaEmbeddingGenerator(fixture.Model, contextSize: 128);
        string[] texts = ["the pass key is hidden", "the quick brown fox", "the pass key is hidden"];
        GeneratedEmbeddings<Embedding<float>> result = await generator.GenerateAsync(texts);
        Assert.Equal(3, result.Count);
        foreach (Embedding<float> e in result)
        {
            Assert.Equal(fixture.Model.EmbeddingSize, e.Vector.Length);
            Assert.Equal(1f, TensorPrimitives.Norm(e.Vector.Span), 3);
            Assert.Equal("tiny-llama", e.ModelId);
        }
        Assert.Equal(result[0].Vector.ToArray(), result[2].Vector.ToArray());
        Assert.True(TensorPrimitives.Dot(result[0].Vector.Span, result[1].Vector.Span) < 0.9999f, "different texts, different vectors");
        long tokens = texts.Sum(t => (long)fixture.Model.Tokenizer.Tokenize(t).Length);
        Assert.Equal(tokens, result.Usage!.InputTokenCount);
        Assert.Equal(fixture.Model.EmbeddingSize, generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);
    }

    [Fact]
    public async Task VectorIsTheNormalisedPooledEmbedding()
    {
        using var generator = new LlamaEmbeddingGenerator(fixture.Model, contextSize: 128);
        Embedding<float> embedding = (await generator.GenerateAsync(["attention finds the answer"]))[0];
        using var context = fixture.Model.CreateContext(new Heed.Llama.LlamaContextOptions { ContextSize = 128, Embeddings = true });
        float[] raw = context.GetEmbeddings("attention finds the answer");
        float norm = TensorPrimitives.Norm(raw);
        for (int i = 0; i < raw.Length; i++)
        {
            Assert.Equal(raw[i] / norm, embedding.Vector.Span[i], 4);
        }
    }

    [Fact]
    public async Task BadInputIsRejected()
    {
        using var generator = new LlamaEmbeddingGenerator(fixture.Model, contextSize: 128);
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(["fine", " "]));
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(["fine"], new EmbeddingGenerationOptions { Dimensions = 3 }));
        Assert.Empty(await generator.GenerateAsync([]));
    }
}
