namespace Heed.Llama;

/// <summary>Sampling and stopping for generation. The defaults are greedy and deterministic.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>0 picks the most likely token (greedy); higher values sample more freely.</summary>
    public float Temperature { get; init; }

    /// <summary>Keep the k most likely tokens (0 = all). Used when sampling.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>Keep the smallest set whose probability reaches p. Used when sampling.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Drop tokens below p times the best token's probability. Used when sampling.</summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>Seed for sampling; null draws one.</summary>
    public uint? Seed { get; init; }

    /// <summary>Penalty for repeating recent tokens (1 = none).</summary>
    public float RepeatPenalty { get; init; } = 1f;

    /// <summary>Recent tokens the penalties look at.</summary>
    public int RepeatLastN { get; init; } = 64;

    /// <summary>Penalty growing with how often a token appeared.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Penalty for any token that appeared.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Generation stops before any of these texts; they are not returned.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>
    /// A GBNF grammar (root rule <c>root</c>) that every generated token must keep the text within,
    /// applied with llama.cpp's grammar sampler; null for free text. <see cref="Heed.AI.JsonSchemaGrammar"/>
    /// writes one for a JSON schema.
    /// </summary>
    public string? Grammar { get; init; }

    /// <summary>
    /// The options, or the defaults, once they and a tokenized prompt for a context of
    /// <paramref name="contextSize"/> tokens are checked: what every engine does before generating.
    /// </summary>
    internal static GenerationOptions ForPrompt(GenerationOptions? options, int[] promptTokens, int contextSize)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        if (promptTokens.Length == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(promptTokens));
        }
        options ??= new GenerationOptions();
        options.Validate();
        if (promptTokens.Length >= contextSize)
        {
            throw new ArgumentException(
                $"The prompt is {promptTokens.Length} tokens; the context holds {contextSize}. Shorten it or use a larger ContextSize.",
                nameof(promptTokens));
        }
        return options;
    }

    internal void Validate()
    {
        if (MaxTokens <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be positive.");
        }
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number >= 0.");
        }
        if (TopK < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be >= 0.");
        }
        if (!(TopP > 0 && TopP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1].");
        }
        if (!(MinP >= 0 && MinP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "MinP must be in [0, 1].");
        }
        if (!(RepeatPenalty > 0) || RepeatLastN < 0 || !float.IsFinite(FrequencyPenalty) || !float.IsFinite(PresencePenalty))
        {
            throw new ArgumentOutOfRangeException(nameof(RepeatPenalty), "RepeatPenalty must be > 0, RepeatLastN >= 0, other penalties finite.");
        }
        if (Grammar is not null && string.IsNullOrWhiteSpace(Grammar))
        {
            throw new ArgumentException("Grammar is empty; set null for free text or a GBNF grammar with a root rule.", nameof(Grammar));
        }
        if (StopSequences.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Stop sequences must not be empty strings.", nameof(StopSequences));
        }
    }
}
