using Heed.Attention;
using Heed.Llama;

namespace Heed.Ranking;

/// <summary>How <see cref="InContextReranker"/> builds its prompt and reads attention.</summary>
public sealed record InContextRerankerOptions
{
    /// <summary>Tokens per forward pass; documents beyond it go to further windows. 0: the model's trained context.</summary>
    public int ContextSize { get; init; }

    /// <summary>Layers whose attention is summed; null for all (as the paper does).</summary>
    public IReadOnlyList<int>? Layers { get; init; }

    /// <summary>Text before the documents.</summary>
    public string Instruction { get; init; } = "Here are some paragraphs:";

    /// <summary>Text between the documents and the query.</summary>
    public string QueryInstruction { get; init; } =
        "Please find information that is relevant to the following query in the paragraphs above.";

    /// <summary>The content-free query whose attention calibrates away the model's position and format bias.</summary>
    public string CalibrationQuery { get; init; } = "N/A";

    /// <summary>Keep Q/K rows in half precision (half the memory).</summary>
    public bool StoreHalfPrecision { get; init; } = true;

    /// <summary>Where the aggregation runs.</summary>
    public AttentionDevice Device { get; init; } = AttentionDevice.Cpu;

    /// <summary>Options for the context the reranker decodes with (ContextSize above wins).</summary>
    public LlamaContextOptions ContextOptions { get; init; } = new();

    internal void Validate()
    {
        if (ContextSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be 0 (the model's) or positive.");
        }
        ArgumentException.ThrowIfNullOrWhiteSpace(CalibrationQuery);
        ArgumentNullException.ThrowIfNull(Instruction);
        ArgumentNullException.ThrowIfNull(QueryInstruction);
    }
}
