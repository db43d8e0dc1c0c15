using System.Runtime.InteropServices;
using System.Text;
using Heed.Interop.Llama;
using Heed.Llama;

namespace Heed.AI;

/// <summary>
/// Turns chat messages into the prompt text a model was trained on, with llama.cpp's
/// <c>llama_chat_apply_template</c>. llama.cpp recognises the common template families
/// (ChatML, Llama 2/3, Mistral, Gemma, Phi, ...) from the model's Jinja template or from a
/// template name such as <c>"chatml"</c>; it does not run arbitrary Jinja.
/// </summary>
public sealed unsafe class ChatTemplate
{
    private readonly byte[] _templateUtf8;

    private ChatTemplate(string template, string source)
    {
        Template = template;
        Source = source;
        _templateUtf8 = NullTerminated(template);
    }

    /// <summary>The template text (Jinja) or template name handed to llama.cpp.</summary>
    public string Template { get; }

    /// <summary>Where the template came from: "model" or "fallback".</summary>
    public string Source { get; }

    /// <summary>
    /// The model's own template, or <paramref name="fallback"/> when the model has none or
    /// llama.cpp does not recognise it.
    /// </summary>
    /// <param name="model">The model whose GGUF <c>tokenizer.chat_template</c> is used.</param>
    /// <param name="fallback">A llama.cpp template name (e.g. "chatml", "llama3") or a Jinja template of a known family; null for none.</param>
    /// <exception cref="InvalidOperationException">The model has no usable template and no fallback is given.</exception>
    /// <exception cref="ArgumentException">The fallback is not a template llama.cpp knows.</exception>
    public static ChatTemplate FromModel(LlamaModel model, string? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FromEngine(model, fallback, $"'{model.Path}'");
    }

    /// <summary>
    /// The template of a model loaded by any engine (e.g. Heed.LLamaSharp's), read from its GGUF
    /// <c>tokenizer.chat_template</c>, or <paramref name="fallback"/> as in <see cref="FromModel"/>.
    /// </summary>
    public static ChatTemplate FromEngine(IInferenceEngine engine, string? fallback = null) =>
        engine is LlamaModel model ? FromModel(model, fallback) : FromEngine(engine ?? throw new ArgumentNullException(nameof(engine)), fallback, "the model");

    private static ChatTemplate FromEngine(IInferenceEngine engine, string? fallback, string modelName)
    {
        if (fallback is not null && string.IsNullOrWhiteSpace(fallback))
        {
            throw new ArgumentException("The fallback chat template is empty; pass null or a template name such as \"chatml\".", nameof(fallback));
        }
        string? own = engine is LlamaModel heed ? heed.ChatTemplate : engine.GetMetadata("tokenizer.chat_template");
        if (own is { Length: > 0 })
        {
            LlamaBackend.EnsureInitialized();
            var candidate = new ChatTemplate(own, "model") { ModelTemplate = own };
            if (candidate.IsRecognised())
            {
                return candidate;
            }
            if (fallback is null)
            {
                throw new InvalidOperationException(
                    $"llama.cpp does not recognise the chat template of {modelName} (it supports the common families, not arbitrary Jinja). " +
                    "Set a fallback template name such as \"chatml\" or \"llama3\" (HeedOptions.FallbackChatTemplate, or LlamaChatClientOptions.FallbackTemplate).");
            }
        }
        else if (fallback is null)
        {
            throw new InvalidOperationException(
                $"The model {modelName} has no chat template (GGUF key tokenizer.chat_template). " +
                "Set a fallback template name such as \"chatml\" or \"llama3\" (HeedOptions.FallbackChatTemplate, or LlamaChatClientOptions.FallbackTemplate).");
        }
        ChatTemplate named = Named(fallback!, "fallback");
        named.ModelTemplate = own;
        return named;
    }

    /// <summary>The model's own Jinja template (even when llama.cpp did not recognise it and a fallback is used); null when it has none.</summary>
    internal string? ModelTemplate { get; private set; }

    /// <summary>A template by llama.cpp name (e.g. "chatml", "llama3", "mistral-v7") or Jinja text of a known family.</summary>
    /// <exception cref="ArgumentException">llama.cpp does not know the template.</exception>
    public static ChatTemplate FromName(string template) => Named(template, "fallback");

    private static ChatTemplate Named(string template, string source)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(template);
        LlamaBackend.EnsureInitialized();
        var named = new ChatTemplate(template, source);
        if (!named.IsRecognised())
        {
            throw new ArgumentException(
                $"llama.cpp does not know the chat template '{Shorten(template)}'. Use a name such as \"chatml\", \"llama3\", \"llama2\", \"mistral-v7\", \"gemma\" or \"phi3\".",
                nameof(template));
        }
        return named;
    }

    /// <summary>Formats messages as one prompt.</summary>
    /// <param name="messages">Role and text of each message, in order; at least one.</param>
    /// <param name="addAssistantPrompt">End with the tokens that open the assistant's turn.</param>
    /// <exception cref="ArgumentException">No messages, or a role that is empty.</exception>
    public string Format(IReadOnlyList<(string Role, string Content)> messages, bool addAssistantPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            throw new ArgumentException("There are no messages to format; pass at least one.", nameof(messages));
        }
        foreach ((string role, string content) in messages)
        {
            if (string.IsNullOrWhiteSpace(role))
            {
                throw new ArgumentException("Every message needs a role (system, user, assistant, tool).", nameof(messages));
            }
            ArgumentNullException.ThrowIfNull(content, nameof(messages));
        }
        string? text = TryFormat(messages, addAssistantPrompt);
        return text ?? throw new InvalidOperationException($"llama.cpp could not apply the chat template '{Shorten(Template)}'.");
    }

    private bool IsRecognised() => TryFormat([("user", "hi")], true) is not null;

    private string? TryFormat(IReadOnlyList<(string Role, string Content)> messages, bool addAssistantPrompt)
    {
        var pinned = new List<GCHandle>(messages.Count * 2);
        try
        {
            var native = new LlamaChatMessage[messages.Count];
            long contentBytes = 0;
            for (int i = 0; i < messages.Count; i++)
            {
                byte[] role = NullTerminated(messages[i].Role);
                byte[] content = NullTerminated(messages[i].Content);
                contentBytes += role.Length + content.Length;
                GCHandle r = GCHandle.Alloc(role, GCHandleType.Pinned);
                pinned.Add(r);
                GCHandle c = GCHandle.Alloc(content, GCHandleType.Pinned);
                pinned.Add(c);
                native[i].role = (byte*)r.AddrOfPinnedObject();
                native[i].content = (byte*)c.AddrOfPinnedObject();
            }
            // Templates add a little text per message; llama.cpp reports the size it needs when short.
            int capacity = (int)Math.Min(int.MaxValue, contentBytes * 2 + 256);
            for (int attempt = 0; attempt < 2; attempt++)
            {
                byte[] buffer = new byte[capacity];
                int n;
                fixed (byte* t = _templateUtf8)
                fixed (LlamaChatMessage* m = native)
                fixed (byte* b = buffer)
                {
                    n = LlamaNative.llama_chat_apply_template(t, m, (nuint)native.Length, addAssistantPrompt, b, buffer.Length);
                }
                if (n < 0)
                {
                    return null;
                }
                if (n <= buffer.Length)
                {
                    return Encoding.UTF8.GetString(buffer, 0, n);
                }
                capacity = n;
            }
            return null;
        }
        finally
        {
            foreach (GCHandle handle in pinned)
            {
                handle.Free();
            }
        }
    }

    private static byte[] NullTerminated(string text)
    {
        int length = Encoding.UTF8.GetByteCount(text);
        byte[] bytes = new byte[length + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";
}
