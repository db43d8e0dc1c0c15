using Heed.Llama;
using Heed.TestModels;

namespace Heed.Tests.Llama;

[Collection(TinyModelCollection.Name)]
public sealed class LlamaModelTests(TinyModelFixture fixture)
{
    [Fact]
    public void ReportsTheMetadataItWasWrittenWith()
    {
        LlamaModel model = fixture.Model;
        Assert.Equal("llama", model.Architecture);
        Assert.Equal(TinyLlama.Layers, model.LayerCount);
        Assert.Equal(TinyLlama.Heads, model.HeadCount);
        Assert.Equal(TinyLlama.KvHeads, model.KvHeadCount);
        Assert.Equal(TinyLlama.EmbeddingSize, model.EmbeddingSize);
        Assert.Equal(TinyLlama.ContextLength, model.TrainedContextLength);
        Assert.Equal(TinyLlama.VocabularySize, model.VocabularySize);
        Assert.Equal("heed-tiny-random", model.GetMetadata("general.name"));
        Assert.Null(model.GetMetadata("no.such.key"));
        Assert.Contains("add_generation_prompt", model.ChatTemplate);
        Assert.True(model.ParameterCount > 100_000);
    }

    [Fact]
    public async Task LoadReportsProgressUpToOne()
    {
        var values = new List<float>();
        var progress = new SynchronousProgress(values.Add);
        using LlamaModel model = await LlamaModel.LoadAsync(fixture.ModelPath, new LlamaModelOptions { GpuLayers = 0 }, progress);
        Assert.NotEmpty(values);
        Assert.Equal(1f, values[^1]);
        Assert.Equal(values.Order(), values);
    }

    [Fact]
    public async Task LoadCanBeCancelled()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => LlamaModel.LoadAsync(fixture.ModelPath, null, null, cts.Token));

        // Cancelled from inside the load: the progress callback tells llama.cpp to stop.
        using var midway = new CancellationTokenSource();
        var progress = new SynchronousProgress(_ => midway.Cancel());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => LlamaModel.LoadAsync(fixture.ModelPath, new LlamaModelOptions { GpuLayers = 0 }, progress, midway.Token));
    }

    [Fact]
    public void TheBackendCheckedTheStructLayouts()
    {
        LlamaBackend.EnsureInitialized();
        NativeAbiCheck.Verify();
        Assert.Contains(LlamaBackend.Devices, d => d.Name == "CPU");
        Assert.Equal("v0.5.0", LlamaBackend.LlamaRelease);
    }

    private sealed class SynchronousProgress(Action<float> report) : IProgress<float>
    {
        public void Report(float value) => report(value);
    }
}
