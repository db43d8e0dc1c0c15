using Heed.Attention;
using Heed.Llama;

namespace Heed.Retrieval;

/// <summary>How <see cref="InfiniteRetriever"/> reads a long document.</summary>
public sealed record InfiniteRetrieverOptions
{
    /// <summary>Tokens per forward pass (cache + chunk + question). 0: the model's trained context.</summary>
    public int ContextSize { get; init; }

    /// <summary>
    /// The layer whose attention scores tokens; -1 probes the model once for the layer whose
    /// question attention best finds planted facts of varied kinds and wordings (the paper uses
    /// the last layer of its models).
    /// </summary>
    public int Layer { get; init; } = -1;

    /// <summary>Most tokens of cached evidence carried to the next chunk; 0: a quarter of the context.</summary>
    public int CacheTokens { get; init; }

    /// <summary>Tokens ranked to pick the sentences that stay in the cache.</summary>
    public int TopKTokens { get; init; } = 32;

    /// <summary>Width of the 1-D convolution that turns token scores into phrase scores (odd).</summary>
    public int PhraseWidth { get; init; } = 3;

    /// <summary>
    /// Subtract the attention of a content-free question ("N/A", as in-context re-ranking does)
    /// decoded on the same cache. Removes the pull of recent tokens that small models show.
    /// </summary>
    public bool Calibrate { get; init; } = true;

    /// <summary>
    /// The least score (the share of the question's attention on the best phrase, above what a
    /// content-free question pays it) that counts as found; below it the result says not found
    /// and <see cref="InfiniteRetriever.AnswerAsync"/> generates no answer. The default, 0, says
    /// "not found" only when no evidence stands above calibration at all: on the development split
    /// (models/heldout/dev, tests/infini-dev) the shipped heed-tiny scores needles it kept at
    /// 0.001–0.039 and the best sentence of haystacks without a needle at 0.020–0.048, so no higher
    /// threshold separates them for that model. Measure a model's own with that harness.
    /// </summary>
    public double NotFoundThreshold { get; init; } = 0.0;

    /// <summary>Sentences on each side of a selected sentence (in the document) that are kept with it.</summary>
    public int NeighborSentences { get; init; } = 1;

    /// <summary>Longest sentence in tokens; longer ones are cut at word boundaries.</summary>
    public int MaxSentenceTokens { get; init; } = 96;

    /// <summary>Tokens the answer may take.</summary>
    public int AnswerMaxTokens { get; init; } = 48;

    /// <summary>
    /// Each pass computes the model only up to the scoring layer: nothing above it is read for
    /// scoring, and the answer is generated from a cleared cache. False computes every layer, with
    /// the same scores, more slowly; it exists to measure what stopping saves.
    /// </summary>
    public bool StopAtScoringLayer { get; init; } = true;

    /// <summary>Where the aggregation runs.</summary>
    public AttentionDevice Device { get; init; } = AttentionDevice.Cpu;

    /// <summary>Options of the context used for reading (ContextSize above wins).</summary>
    public LlamaContextOptions ContextOptions { get; init; } = new();

    internal void Validate(IInferenceEngine model)
    {
        if (ContextSize is < 0 or > 0 and < 64)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be 0 (the model's) or at least 64.");
        }
        if (Layer < -1 || Layer >= model.LayerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(Layer), Layer, $"Layer must be -1 (probed) or in [0, {model.LayerCount}).");
        }
        if (CacheTokens < 0 || TopKTokens <= 0 || AnswerMaxTokens <= 0 || MaxSentenceTokens < 8 || NeighborSentences < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(CacheTokens), "CacheTokens >= 0, TopKTokens > 0, AnswerMaxTokens > 0, MaxSentenceTokens >= 8.");
        }
        if (!double.IsFinite(NotFoundThreshold))
        {
            throw new ArgumentOutOfRangeException(nameof(NotFoundThreshold), NotFoundThreshold, "NotFoundThreshold must be a finite number.");
        }
        if (PhraseWidth <= 0 || PhraseWidth % 2 == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(PhraseWidth), PhraseWidth, "PhraseWidth must be a positive odd number.");
        }
    }
}
