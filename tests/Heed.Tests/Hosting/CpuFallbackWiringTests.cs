using Heed.Hosting;
using Heed.Llama;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.Tests.Hosting;

/// <summary>AddHeed's inference, with a stand-in "GPU" model whose work fails: the CPU copy of the model answers.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class CpuFallbackWiringTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task GpuFailureMovesTheRequestToTheCpuModel()
    {
        using LlamaModel cpuModel = LlamaModel.Load(fixture.ModelPath, new LlamaModelOptions { GpuLayers = 0 });
        var options = new HeedOptions { ModelPath = fixture.ModelPath, ContextSize = 64, PoolSize = 1, Threads = 1 };
        using var models = new HeedModelProvider(fixture.Model, cpuModel, options);
        using LlamaInference inference = HeedInferenceFactory.Create(models, options, "fallback-test", embeddings: false, NullLoggerFactory.Instance);

        LlamaModel answeredBy = await inference.RunAsync((context, _) => context.Model == fixture.Model
            ? throw new OutOfMemoryException("CUDA out of memory (injected)")
            : Task.FromResult(context.Model));
        Assert.Same(cpuModel, answeredBy);

        // Work that succeeds stays on the primary model.
        Assert.Same(fixture.Model, await inference.RunAsync((context, _) => Task.FromResult(context.Model)));
    }

    [Fact]
    public async Task WithoutCpuFallbackTheGpuFailureIsTheCallers()
    {
        using LlamaModel cpuModel = LlamaModel.Load(fixture.ModelPath, new LlamaModelOptions { GpuLayers = 0 });
        var options = new HeedOptions { ModelPath = fixture.ModelPath, ContextSize = 64, PoolSize = 1, Threads = 1, CpuFallback = false };
        using var models = new HeedModelProvider(fixture.Model, cpuModel, options);
        using LlamaInference inference = HeedInferenceFactory.Create(models, options, "no-fallback-test", embeddings: false, NullLoggerFactory.Instance);
        await Assert.ThrowsAsync<HeedNativeException>(() =>
            inference.RunAsync<int>((_, _) => throw new HeedNativeException("ggml_cuda error (injected)")));
    }
}
