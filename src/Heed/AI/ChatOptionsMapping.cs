using Heed.Llama;
using Microsoft.Extensions.AI;

namespace Heed.AI;

/// <summary>Maps Microsoft.Extensions.AI <see cref="ChatOptions"/> to llama.cpp sampling, checking each value first.</summary>
internal static class ChatOptionsMapping
{
    public static GenerationOptions ToGenerationOptions(ChatOptions? options, int defaultMaxTokens)
    {
        var defaults = new GenerationOptions();
        if (options is null)
        {
            return defaults with { MaxTokens = defaultMaxTokens };
        }
        if (options.MaxOutputTokens is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputTokens, "ChatOptions.MaxOutputTokens must be positive (or null for the client's default).");
        }
        if (options.Temperature is { } t && (!float.IsFinite(t) || t < 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), t, "ChatOptions.Temperature must be a finite number >= 0 (0 is greedy).");
        }
        if (options.TopP is { } p && !(p > 0 && p <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), p, "ChatOptions.TopP must be in (0, 1].");
        }
        if (options.TopK is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "ChatOptions.TopK must be >= 0 (0 keeps every token).");
        }
        if (options.Seed is { } seed && (seed < 0 || seed > uint.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(options), seed, $"ChatOptions.Seed must be in [0, {uint.MaxValue}]: llama.cpp seeds are 32-bit.");
        }
        if (options.FrequencyPenalty is { } f && !float.IsFinite(f) || options.PresencePenalty is { } pp && !float.IsFinite(pp))
        {
            throw new ArgumentOutOfRangeException(nameof(options), "ChatOptions.FrequencyPenalty and PresencePenalty must be finite.");
        }
        if (options.StopSequences?.Any(string.IsNullOrEmpty) == true)
        {
            throw new ArgumentException("ChatOptions.StopSequences must not contain empty strings.", nameof(options));
        }
        return new GenerationOptions
        {
            MaxTokens = options.MaxOutputTokens ?? defaultMaxTokens,
            Temperature = options.Temperature ?? defaults.Temperature,
            TopP = options.TopP ?? defaults.TopP,
            TopK = options.TopK ?? defaults.TopK,
            Seed = options.Seed is { } s ? (uint)s : null,
            FrequencyPenalty = options.FrequencyPenalty ?? defaults.FrequencyPenalty,
            PresencePenalty = options.PresencePenalty ?? defaults.PresencePenalty,
            StopSequences = options.StopSequences?.ToArray() ?? [],
        };
    }

    /// <summary>
    /// Role and text of each message; ChatOptions.Instructions, then the reply format's
    /// instructions, go first as a system message (joined with one the caller gave).
    /// </summary>
    public static List<(string Role, string Content)> ToTemplateMessages(IEnumerable<ChatMessage> messages, ChatOptions? options, ReplyFormat? format)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var result = new List<(string, string)>();
        foreach (ChatMessage message in messages)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            result.Add((message.Role.Value, TextOf(message)));
        }
        if (result.Count == 0 || result.All(m => m.Item1 == "system"))
        {
            throw new ArgumentException("There are no chat messages to answer; pass at least one user message.", nameof(messages));
        }
        string[] system = new[] { options?.Instructions, format?.Instructions }.Where(s => !string.IsNullOrWhiteSpace(s)).ToArray()!;
        if (system.Length > 0)
        {
            string added = string.Join("\n", system);
            if (result[0].Item1 == "system")
            {
                result[0] = ("system", result[0].Item2 + "\n" + added);
            }
            else
            {
                result.Insert(0, ("system", added));
            }
        }
        return result;
    }

    // The model reads text: tool calls and results are rendered as text, other non-text content is left out.
    private static string TextOf(ChatMessage message)
    {
        var parts = new List<string>();
        foreach (AIContent content in message.Contents)
        {
            switch (content)
            {
                case TextContent text:
                    parts.Add(text.Text);
                    break;
                case FunctionCallContent call:
                    parts.Add(ReplyFormat.Render(call));
                    break;
                case FunctionResultContent result:
                    parts.Add(ReplyFormat.Render(result));
                    break;
            }
        }
        return string.Concat(parts);
    }
}
