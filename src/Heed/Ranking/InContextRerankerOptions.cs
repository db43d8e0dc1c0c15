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

    /// <summary>
    /// Read attention as the authors' reference code does, for comparison with their figures: the
    /// query rows are the whole tail after the documents (query instruction, "Query:", the query and
    /// the chat template's closing of the turn), and a document's span includes its "[k]" delimiter.
    /// False (the default): Heed's corrected scoring, which reads only the rows where the query and
    /// the calibration query differ (the rows they share cancel exactly) and only the document's own tokens.
    /// </summary>
    public bool UsePaperConvention { get; init; }

    /// <summary>
    /// Wrap the prompt in the model's chat template (the user turn) when the model has one that
    /// llama.cpp recognises, as the authors do for instruct models; models without one get plain text.
    /// </summary>
    public bool UseChatTemplate { get; init; } = true;

    /// <summary>
    /// Number the documents "[1]", "[2]", ... as the authors do (the default). False writes "[*]" before
    /// every document, so a document's tokens do not depend on its place in the list: what lets
    /// <see cref="CachedDocumentReranker"/> reuse a document's cache wherever it lands.
    /// </summary>
    public bool NumberDocuments { get; init; } = true;

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
