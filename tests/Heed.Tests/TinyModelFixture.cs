using Heed.Llama;
using Heed.TestModels;

namespace Heed.Tests;

/// <summary>Writes the tiny random-weight model once per test run and loads it.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("heed-tests-").FullName;
        ModelPath = Path.Combine(Directory, "tiny-llama.gguf");
        TinyLlama.Write(ModelPath);
        Model = LlamaModel.Load(ModelPath, new LlamaModelOptions { GpuLayers = GpuLayersFromEnvironment() });
    }

    public string Directory { get; }

    public string ModelPath { get; }

    public LlamaModel Model { get; }

    /// <summary>HEED_TEST_GPU_LAYERS=-1 runs the model tests with every layer on the GPU.</summary>
    public static int GpuLayersFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("HEED_TEST_GPU_LAYERS"), out int n) ? n : 0;

    public LlamaContext CreateContext(int contextSize = 256, int batchSize = 256, int sequences = 1) =>
        Model.CreateContext(new LlamaContextOptions
        {
            ContextSize = contextSize, BatchSize = batchSize, MicroBatchSize = batchSize, SequenceCount = sequences, Threads = 2,
            // f32 caches keep results of different batchings within float32 rounding of each other
            KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
        });

    public void Dispose()
    {
        Model.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class TinyModelCollection : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny model";
}
