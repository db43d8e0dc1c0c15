using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Heed.Hosting;
using Heed.Llama;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.AI;

/// <summary>
/// <see cref="IChatClient"/> over a local llama.cpp model. Messages are formatted with the
/// model's own chat template (<see cref="ChatTemplate"/>); each request leases one pooled context.
/// ChatOptions map to sampling: Temperature, TopP, TopK, MaxOutputTokens, StopSequences, Seed,
/// FrequencyPenalty, PresencePenalty. Responses carry input and output token counts in <see cref="UsageDetails"/>.
/// </summary>
/// <remarks>
/// <para>
/// <b>Tools and structured output.</b> ChatOptions.Tools (under ToolMode Auto, RequireAny or
/// RequireSpecific) are described to the model in the system message, and decoding is constrained
/// by a grammar (<see cref="JsonSchemaGrammar"/>, llama.cpp's grammar sampler) to a call whose
/// arguments are valid for the tool's JSON schema, or under Auto to an answer. A call comes back as
/// <see cref="FunctionCallContent"/> with <see cref="ChatFinishReason.ToolCalls"/>, so the client works
/// under <c>UseFunctionInvocation()</c>. ChatResponseFormat.Json and ForJsonSchema constrain the
/// reply to JSON (valid for the schema), so <c>GetResponseAsync&lt;T&gt;</c> works. Such replies are
/// delivered whole at the end, also when streaming; stop sequences do not apply to them. A reply
/// cut off by MaxOutputTokens is returned as its raw text with <see cref="ChatFinishReason.Length"/>.
/// </para>
/// <para>
/// Requests run under the <see cref="LlamaInference"/>'s limits: past its timeout a request fails
/// with Polly's <c>TimeoutRejectedException</c>, and when its queue is full with
/// <c>RateLimiterRejectedException</c>. A prompt longer than the context is an
/// <see cref="ArgumentException"/> before any generation.
/// </para>
/// </remarks>
public sealed class LlamaChatClient : IChatClient
{
    private readonly LlamaInference _inference;
    private readonly LlamaChatClientOptions _options;
    private readonly ILogger _logger;
    private readonly bool _ownsInference;
    private readonly ConditionalWeakTable<LlamaModel, ChatTemplate> _templates = new();
    private readonly ChatClientMetadata _metadata;

    /// <summary>A chat client whose requests run through <paramref name="inference"/> (pool, limits, fallback).</summary>
    /// <param name="inference">Leases contexts; not disposed with the client.</param>
    /// <param name="options">Defaults; null for the defaults.</param>
    /// <param name="logger">Receives one line per request.</param>
    public LlamaChatClient(LlamaInference inference, LlamaChatClientOptions? options = null, ILogger? logger = null)
        : this(inference, options, logger, ownsInference: false)
    {
    }

    /// <summary>A chat client over a loaded model with its own pool of <paramref name="poolSize"/> contexts.</summary>
    /// <param name="model">The model; not disposed with the client.</param>
    /// <param name="contextOptions">How contexts are made (ContextSize, ...); null for the defaults.</param>
    /// <param name="options">Defaults; null for the defaults.</param>
    /// <param name="poolSize">Requests served at once.</param>
    /// <param name="logger">Receives one line per request.</param>
    public LlamaChatClient(LlamaModel model, LlamaContextOptions? contextOptions = null, LlamaChatClientOptions? options = null,
        int poolSize = 1, ILogger? logger = null)
        : this(LlamaInference.ForModel(model, contextOptions, poolSize, "chat", logger), options, logger, ownsInference: true)
    {
        // Fail now, not on the first request, when the model cannot be chatted with.
        _templates.Add(model, ChatTemplate.FromModel(model, _options.FallbackTemplate));
    }

    private LlamaChatClient(LlamaInference inference, LlamaChatClientOptions? options, ILogger? logger, bool ownsInference)
    {
        ArgumentNullException.ThrowIfNull(inference);
        options ??= new LlamaChatClientOptions();
        options.Validate();
        _inference = inference;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _ownsInference = ownsInference;
        _metadata = new ChatClientMetadata("heed", null, options.ModelId);
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        Request request = Prepare(messages, options);
        return await _inference.RunAsync(async (context, token) =>
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (ChatResponseUpdate update in GenerateAsync(context, request, token).ConfigureAwait(false))
            {
                updates.Add(update);
            }
            return updates.ToChatResponse();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        Request request = Prepare(messages, options);
        return _inference.StreamAsync((context, token) => GenerateAsync(context, request, token), cancellationToken);
    }

    // Checked before a context is leased, so a bad request never takes a pool slot.
    private Request Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ReplyFormat? format = ReplyFormat.For(options, _options.JsonLimits);
        List<(string, string)> formatted = ChatOptionsMapping.ToTemplateMessages(messages, options, format);
        GenerationOptions generation = ChatOptionsMapping.ToGenerationOptions(options, _options.DefaultMaxOutputTokens);
        if (format is not null)
        {
            // A stop sequence could cut the JSON short; the grammar ends the reply instead.
            generation = generation with { Grammar = format.Grammar, StopSequences = [] };
        }
        return new Request(formatted, generation, format, options?.ModelId ?? _options.ModelId, "heed-" + Guid.NewGuid().ToString("N"));
    }

    private sealed record Request(List<(string Role, string Content)> Messages, GenerationOptions Generation, ReplyFormat? Format,
        string? ModelId, string ResponseId);

    private async IAsyncEnumerable<ChatResponseUpdate> GenerateAsync(LlamaContext context, Request request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using Activity? activity = HeedTelemetry.ActivitySource.StartActivity("heed.chat");
        LlamaModel model = context.Model;
        string modelId = request.ModelId ?? Path.GetFileNameWithoutExtension(model.Path);
        activity?.SetTag("gen_ai.request.model", modelId);
        ChatTemplate template = _templates.GetValue(model, m => ChatTemplate.FromModel(m, _options.FallbackTemplate));
        string prompt = template.Format(request.Messages, addAssistantPrompt: true);
        int[] promptTokens = TokenizePrompt(model.Tokenizer, prompt);
        activity?.SetTag("gen_ai.usage.input_tokens", promptTokens.Length);

        string messageId = Guid.NewGuid().ToString("N");
        DateTimeOffset created = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(IList<AIContent> contents, ChatFinishReason? finish = null) => new(ChatRole.Assistant, contents)
        {
            ResponseId = request.ResponseId,
            MessageId = messageId,
            CreatedAt = created,
            ModelId = modelId,
            FinishReason = finish,
        };

        Decoder decoder = Encoding.UTF8.GetDecoder();
        var filter = new StopSequenceFilter(request.Generation.StopSequences);
        var clock = Stopwatch.StartNew();
        int produced = 0;
        bool hitStopSequence = false;
        var whole = new StringBuilder();
        await foreach (int token in context.GenerateTokensAsync(promptTokens, request.Generation, cancellationToken).ConfigureAwait(false))
        {
            produced++;
            byte[] bytes = model.Tokenizer.TokenToBytes(token);
            char[] chars = new char[decoder.GetCharCount(bytes, flush: false)];
            decoder.GetChars(bytes, chars, flush: false);
            (string ready, bool stop) = filter.Push(new string(chars));
            if (request.Format is not null)
            {
                whole.Append(ready);
            }
            else if (ready.Length > 0)
            {
                yield return Update([new TextContent(ready)]);
            }
            if (stop)
            {
                hitStopSequence = true;
                break;
            }
        }
        string rest = filter.Flush();
        clock.Stop();
        bool ranOut = !hitStopSequence && (produced >= request.Generation.MaxTokens || context.NextPosition() >= context.ContextSize);
        ChatFinishReason finish = ranOut ? ChatFinishReason.Length : ChatFinishReason.Stop;
        if (request.Format is not null)
        {
            string text = whole.Append(rest).ToString();
            AIContent? reply = request.Format.Read(text);
            if (reply is FunctionCallContent)
            {
                finish = ChatFinishReason.ToolCalls;
            }
            yield return Update([reply ?? new TextContent(text)]);
        }
        else if (rest.Length > 0)
        {
            yield return Update([new TextContent(rest)]);
        }

        if (produced > 0 && clock.Elapsed > TimeSpan.Zero)
        {
            HeedTelemetry.TokensPerSecond.Record(produced / clock.Elapsed.TotalSeconds, new KeyValuePair<string, object?>("gen_ai.request.model", modelId));
        }
        activity?.SetTag("gen_ai.usage.output_tokens", produced);
        activity?.SetTag("gen_ai.response.finish_reasons", finish.Value);
        _logger.LogDebug("Chat request {ResponseId}: {Input} prompt tokens, {Output} generated in {Elapsed} ms ({Finish}).",
            request.ResponseId, promptTokens.Length, produced, clock.ElapsedMilliseconds, finish.Value);
        var usage = new UsageDetails
        {
            InputTokenCount = promptTokens.Length,
            OutputTokenCount = produced,
            TotalTokenCount = promptTokens.Length + produced,
        };
        yield return Update([new UsageContent(usage)], finish);
    }

    // Templates usually write the BOS token themselves; add it only when they do not and the model wants it.
    private static int[] TokenizePrompt(Tokenizer tokenizer, string prompt)
    {
        int[] tokens = tokenizer.Tokenize(prompt, addSpecial: false, parseSpecial: true);
        if (tokenizer.AddsBeginningOfSequence && tokenizer.BeginningOfSequence >= 0 &&
            (tokens.Length == 0 || tokens[0] != tokenizer.BeginningOfSequence))
        {
            return [tokenizer.BeginningOfSequence, .. tokens];
        }
        return tokens;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(ChatClientMetadata))
        {
            return _metadata;
        }
        if (serviceType == typeof(LlamaInference))
        {
            return _inference;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the client's own pool when it made one; a shared <see cref="LlamaInference"/> is left alone.</summary>
    public void Dispose()
    {
        if (_ownsInference)
        {
            _inference.Dispose();
        }
    }
}
