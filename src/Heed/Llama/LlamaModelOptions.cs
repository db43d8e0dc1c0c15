namespace Heed.Llama;

/// <summary>How a model is loaded.</summary>
public sealed record LlamaModelOptions
{
    /// <summary>Layers to offload to the GPU: -1 all (the default; none when there is no GPU), 0 none.</summary>
    public int GpuLayers { get; init; } = -1;

    /// <summary>Memory-map the file instead of reading it (faster loads, shared pages).</summary>
    public bool UseMemoryMap { get; init; } = true;

    /// <summary>Load the vocabulary only: tokenize without the weights.</summary>
    public bool VocabularyOnly { get; init; }

    internal void Validate()
    {
        if (GpuLayers < -1)
        {
            throw new ArgumentOutOfRangeException(nameof(GpuLayers), GpuLayers, "GpuLayers must be -1 (all), 0 (none) or a positive layer count.");
        }
    }
}
