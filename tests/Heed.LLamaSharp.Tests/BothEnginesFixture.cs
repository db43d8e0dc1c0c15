using Heed.Llama;
using Heed.Tests.ShippedModel;
using LLama;
using LLama.Common;

namespace Heed.LLamaSharp.Tests;

/// <summary>The shipped model loaded twice in one process: by Heed (ShippedModelFixture) and by LLamaSharp.</summary>
public sealed class BothEnginesFixture : IDisposable
{
    private readonly ShippedModelFixture _shipped = new();

    public BothEnginesFixture()
    {
        Weights = LLamaWeights.LoadFromFile(new ModelParams(_shipped.ModelPath) { GpuLayerCount = 0 });
        LLamaSharp = new LLamaSharpEngine(Weights);
    }

    public string ModelPath => _shipped.ModelPath;

    /// <summary>Heed's own engine.</summary>
    public LlamaModel Heed => _shipped.Model;

    public LLamaWeights Weights { get; }

    /// <summary>The same model through LLamaSharp.</summary>
    public LLamaSharpEngine LLamaSharp { get; }

    public void Dispose()
    {
        Weights.Dispose();
        _shipped.Dispose();
    }
}
