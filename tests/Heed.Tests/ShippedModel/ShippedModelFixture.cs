using Heed.Llama;

namespace Heed.Tests.ShippedModel;

/// <summary>models/heed-tiny.gguf, the model that ships with Heed, loaded once.</summary>
public sealed class ShippedModelFixture : IDisposable
{
    /// <summary>The shipped model's file: the one place tests take it from.</summary>
    public static string ModelFile { get; } = Path.Combine(RepositoryPaths.Root, "models", "heed-tiny.gguf");

    public ShippedModelFixture()
    {
        ModelPath = ModelFile;
        Model = LlamaModel.Load(ModelPath, new LlamaModelOptions { GpuLayers = TinyModelFixture.GpuLayersFromEnvironment() });
    }

    public string ModelPath { get; }

    public LlamaModel Model { get; }

    public void Dispose() => Model.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ShippedModelCollection : ICollectionFixture<ShippedModelFixture>
{
    public const string Name = "shipped model";
}
