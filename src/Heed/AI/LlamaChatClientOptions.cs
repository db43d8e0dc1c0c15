namespace Heed.AI;

/// <summary>Defaults of a <see cref="LlamaChatClient"/>; a request's ChatOptions override them.</summary>
public sealed record LlamaChatClientOptions
{
    /// <summary>
    /// A llama.cpp chat template name ("chatml", "llama3", ...) used when the model has no chat
    /// template or one llama.cpp does not recognise; null: such a model is an error.
    /// </summary>
    public string? FallbackTemplate { get; init; }

    /// <summary>Most tokens per answer when ChatOptions.MaxOutputTokens is not set.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 512;

    /// <summary>The model id reported in responses and metadata; null: the model file's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Bounds on strings and arrays that a tool's or response format's schema leaves unbounded.</summary>
    public JsonGrammarLimits JsonLimits { get; init; } = new();

    internal void Validate()
    {
        if (JsonLimits is null || JsonLimits.MaxStringLength <= 0 || JsonLimits.MaxArrayItems <= 0)
        {
            throw new ArgumentException("JsonLimits must be set, with MaxStringLength and MaxArrayItems positive.", nameof(JsonLimits));
        }
        if (DefaultMaxOutputTokens <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(DefaultMaxOutputTokens), DefaultMaxOutputTokens, "DefaultMaxOutputTokens must be positive.");
        }
        if (FallbackTemplate is not null && string.IsNullOrWhiteSpace(FallbackTemplate))
        {
            throw new ArgumentException("FallbackTemplate is empty; set null or a template name such as \"chatml\".", nameof(FallbackTemplate));
        }
    }
}
