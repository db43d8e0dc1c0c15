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
/// <see cref="IChatClient"/> over a local llama.cpp model: Heed's own (each request leases one pooled
/// context) or any <see cref="IInferenceEngine"/>, such as Heed.LLamaSharp's over a model LLamaSharp
/// loaded (decoding then runs in that engine's context). Messages are formatted with the model's own
/// chat template (<see cref="ChatTemplate"/>).
/// ChatOptions map to sampling: Temperature, TopP, TopK, MaxOutputTokens, StopSequences, Seed,
/// FrequencyPenalty, PresencePenalty. Responses carry input and output token counts in <see cref="UsageDetails"/>.
/// </summary>
/// <remarks>
/// <para>
/// <b>Tools and structured output.</b> ChatOptions.Tools (under ToolMode Auto, RequireAny or
/// RequireSpecific) reach the model in its family's own tool format when its chat template has one
/// (<see cref="ToolFormat"/>: Qwen2.5/Hermes, Llama 3.1, Mistral), else in one JSON envelope described
/// in the system message. Decoding is constrained by a grammar (<see cref="JsonSchemaGrammar"/>,
/// llama.cpp's grammar sampler) to a call in that syntax whose arguments are valid for the tool's
/// JSON schema, or under Auto to a call or plain text, the model's first token choosing. A call comes back as
/// <see cref="FunctionCallContent"/> with <see cref="ChatFinishReason.ToolCalls"/>, so the client works
/// under <c>UseFunctionInvocation()</c>. ChatResponseFormat.Json and ForJsonSchema constrain the
/// reply to JSON (valid for the schema), so <c>GetResponseAsync&lt;T&gt;</c> works. Such replies are
/// delivered whole at the end, also when streaming (the update carries the model's raw text as its
/// RawRepresentation); stop sequences do not apply to them. A reply
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
    private readonly LlamaInference? _inference;
    private readonly EngineContext? _engineContext;
    private readonly LlamaChatClientOptions _options;
    private readonly ILogger _logger;
    private readonly bool _ownsInference;
    private readonly ConditionalWeakTable<IInferenceEngine, Template> _templates = new();
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
        _templates.Add(model, TemplateOf(model));
    }

    /// <summary>
    /// A chat client over any engine, e.g. Heed.LLamaSharp's engine over a model LLamaSharp loaded:
    /// prompts are tokenized and decoded through that engine's own contexts and sampler. Requests
    /// are served one at a time on one context. A <see cref="LlamaModel"/> gets Heed's pooled path.
    /// </summary>
    /// <param name="engine">The model; not disposed with the client.</param>
    /// <param name="contextOptions">How the context is made (ContextSize, Threads, ...); null for the defaults.</param>
    /// <param name="options">Defaults; null for the defaults.</param>
    /// <param name="logger">Receives one line per request.</param>
    public LlamaChatClient(IInferenceEngine engine, LlamaContextOptions? contextOptions = null, LlamaChatClientOptions? options = null,
        ILogger? logger = null)
        : this(engine is LlamaModel model ? LlamaInference.ForModel(model, contextOptions, 1, "chat", logger) : null,
            engine is LlamaModel ? null : new EngineContext(engine ?? throw new ArgumentNullException(nameof(engine)), contextOptions ?? new LlamaContextOptions()),
            options, logger, ownsInference: true)
    {
        _templates.Add(engine, TemplateOf(engine));
    }

    private LlamaChatClient(LlamaInference inference, LlamaChatClientOptions? options, ILogger? logger, bool ownsInference)
        : this(inference ?? throw new ArgumentNullException(nameof(inference)), null, options, logger, ownsInference)
    {
    }

    private LlamaChatClient(LlamaInference? inference, EngineContext? engineContext, LlamaChatClientOptions? options, ILogger? logger, bool ownsInference)
    {
        _engineContext = engineContext;
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
        List<ChatMessage> list = Listed(messages);
        Prepare(list, options, null);  // a bad request fails before it waits for a context
        if (_engineContext is { } engine)
        {
            return await engine.RunAsync((context, token) => Collect(engine.Engine, context, list, options, token), cancellationToken).ConfigureAwait(false);
        }
        return await _inference!.RunAsync((context, token) => Collect(context.Model, context, list, options, token), cancellationToken).ConfigureAwait(false);
    }

    private async Task<ChatResponse> Collect(IInferenceEngine engine, IInferenceContext context, List<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate update in GenerateAsync(engine, context, Prepare(messages, options, engine), cancellationToken).ConfigureAwait(false))
        {
            updates.Add(update);
        }
        return updates.ToChatResponse();
    }

    private static List<ChatMessage> Listed(IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.ToList();
        foreach (ChatMessage message in list)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
        }
        return list;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        List<ChatMessage> list = Listed(messages);
        Prepare(list, options, null);
        if (_engineContext is { } engine)
        {
            return engine.StreamAsync((context, token) => GenerateAsync(engine.Engine, context, Prepare(list, options, engine.Engine), token), cancellationToken);
        }
        return _inference!.StreamAsync((context, token) => GenerateAsync(context.Model, context, Prepare(list, options, context.Model), token), cancellationToken);
    }

    // Run once before a context is leased (engine null: checks only, the family unknown yet), so a
    // bad request never takes a pool slot; then again with the leased context's engine.
    private Request Prepare(List<ChatMessage> messages, ChatOptions? options, IInferenceEngine? engine)
    {
        Template? template = engine is null ? null : _templates.GetValue(engine, TemplateOf);
        ToolFormat? family = template?.Family;
        ReplyFormat? format = ReplyFormat.For(options, _options.JsonLimits, family);
        List<(string, string)> formatted = ChatOptionsMapping.ToTemplateMessages(messages, options, format);
        GenerationOptions generation = ChatOptionsMapping.ToGenerationOptions(options, _options.DefaultMaxOutputTokens);
        if (format is not null)
        {
            // A stop sequence could cut the JSON short; the grammar ends the reply instead.
            generation = generation with { Grammar = format.Grammar, StopSequences = [] };
        }
        string? prompt = null;
        if (template is not null)
        {
            // The family's own tool format when tools are offered or the history holds calls; else llama.cpp's template.
            bool toolTurns = messages.Any(m => m.Contents.Any(c => c is FunctionCallContent or FunctionResultContent));
            prompt = family is not null && (format?.Family is not null || toolTurns)
                ? family.Render(messages, format?.Tools ?? [], SystemAddition(options, format), template.SpecialTokens)
                : template.Chat.Format(formatted, addAssistantPrompt: true);
        }
        return new Request(prompt ?? "", generation, format, options?.ModelId ?? _options.ModelId, "heed-" + Guid.NewGuid().ToString("N"));
    }

    /// <summary>The prompt a request would be given on <paramref name="engine"/> (for tests and diagnostics).</summary>
    internal string RenderPrompt(IInferenceEngine engine, IEnumerable<ChatMessage> messages, ChatOptions? options) =>
        Prepare(Listed(messages), options, engine).Prompt;

    /// <summary>The tool format recognised in <paramref name="engine"/>'s chat template; null: the JSON envelope.</summary>
    internal string? ToolFormatOf(IInferenceEngine engine) => _templates.GetValue(engine, TemplateOf).Family?.Name;

    /// <summary>The text the model wrote for a tool call or JSON reply, before it was read.</summary>
    internal async Task<string> RawReplyAsync(IEnumerable<ChatMessage> messages, ChatOptions options)
    {
        string? raw = null;
        await foreach (ChatResponseUpdate update in GetStreamingResponseAsync(messages, options).ConfigureAwait(false))
        {
            raw ??= update.RawRepresentation as string;
        }
        return raw ?? throw new InvalidOperationException("The reply was free text, not a structured one.");
    }

    private static string? SystemAddition(ChatOptions? options, ReplyFormat? format)
    {
        string[] parts = new[] { options?.Instructions, format?.Instructions }.Where(s => !string.IsNullOrWhiteSpace(s)).ToArray()!;
        return parts.Length == 0 ? null : string.Join("\n", parts);
    }

    private sealed record Request(string Prompt, GenerationOptions Generation, ReplyFormat? Format, string? ModelId, string ResponseId);

    /// <summary>A model's chat template, its tool format (null: the envelope) and its BOS/EOS text.</summary>
    private sealed record Template(ChatTemplate Chat, ToolFormat? Family, (string Bos, string Eos) SpecialTokens);

    private Template TemplateOf(IInferenceEngine engine)
    {
        ChatTemplate chat = ChatTemplate.FromEngine(engine, _options.FallbackTemplate);
        string Piece(string key) => int.TryParse(engine.GetMetadata(key), out int id) && id >= 0
            ? Encoding.UTF8.GetString(engine.Tokenizer.TokenToBytes(id, renderSpecial: true))
            : "";
        return new Template(chat, ToolFormat.Detect(chat.ModelTemplate), (Piece("tokenizer.ggml.bos_token_id"), Piece("tokenizer.ggml.eos_token_id")));
    }

    private async IAsyncEnumerable<ChatResponseUpdate> GenerateAsync(IInferenceEngine model, IInferenceContext context, Request request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using Activity? activity = HeedTelemetry.ActivitySource.StartActivity("heed.chat");
        string modelId = request.ModelId ?? (model is LlamaModel heed ? Path.GetFileNameWithoutExtension(heed.Path) : model.GetMetadata("general.name") ?? "model");
        activity?.SetTag("gen_ai.request.model", modelId);
        int[] promptTokens = TokenizePrompt(model.Tokenizer, request.Prompt);
        // A family's call may start with a control token ([TOOL_CALLS]); its text is needed to read the call.
        bool renderSpecial = request.Format?.Family is not null;
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
            byte[] bytes = model.Tokenizer.TokenToBytes(token, renderSpecial);
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
            IList<AIContent>? reply = request.Format.Read(text);
            if (reply?.Any(c => c is FunctionCallContent) == true)
            {
                finish = ChatFinishReason.ToolCalls;
            }
            ChatResponseUpdate read = Update(reply ?? [new TextContent(text)]);
            read.RawRepresentation = text;  // what the model wrote, before it was read as a call or answer
            yield return read;
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
    private static int[] TokenizePrompt(ITokenizer tokenizer, string prompt)
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
        if (serviceType == typeof(IInferenceEngine))
        {
            return _engineContext?.Engine;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the client's own pool when it made one; a shared <see cref="LlamaInference"/> is left alone.</summary>
    public void Dispose()
    {
        if (_ownsInference)
        {
            _inference?.Dispose();
        }
        _engineContext?.Dispose();
    }

    /// <summary>
    /// One context of an engine other than Heed's own, made on first use and serving one request at
    /// a time (Heed's own engine has pools, limits and fallback in <see cref="LlamaInference"/>).
    /// </summary>
    private sealed class EngineContext(IInferenceEngine engine, LlamaContextOptions options) : IDisposable
    {
        private readonly SemaphoreSlim _turn = new(1, 1);
        private IInferenceContext? _context;
        private bool _disposed;

        public IInferenceEngine Engine => engine;

        public async Task<T> RunAsync<T>(Func<IInferenceContext, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await work(Context(), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _turn.Release();
            }
        }

        public async IAsyncEnumerable<T> StreamAsync<T>(Func<IInferenceContext, CancellationToken, IAsyncEnumerable<T>> work,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await foreach (T item in work(Context(), cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    yield return item;
                }
            }
            finally
            {
                _turn.Release();
            }
        }

        private IInferenceContext Context()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _context ??= engine.CreateContext(options);
        }

        public void Dispose()
        {
            _disposed = true;
            _context?.Dispose();
        }
    }
}
