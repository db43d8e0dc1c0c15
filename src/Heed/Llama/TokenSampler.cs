using Heed.Interop.Llama;

namespace Heed.Llama;

/// <summary>A llama.cpp sampler chain built from <see cref="GenerationOptions"/>.</summary>
internal sealed class TokenSampler : IDisposable
{
    private readonly SafeLlamaSamplerHandle _chain;

    public TokenSampler(GenerationOptions options, LlamaModel model)
    {
        _chain = LlamaNative.llama_sampler_chain_init(LlamaNative.llama_sampler_chain_default_params());
        if (options.Grammar is { Length: > 0 } grammar)
        {
            // First in the chain: every later sampler sees only tokens the grammar allows.
            IntPtr constrained = LlamaGrammarNative.llama_sampler_init_grammar(model.Tokenizer.VocabularyPointer, grammar, "root");
            if (constrained == IntPtr.Zero)
            {
                _chain.Dispose();
                throw new ArgumentException("llama.cpp could not parse the GBNF grammar (GenerationOptions.Grammar); its log names the rule at fault.", nameof(options));
            }
            Add(constrained);
        }
        if (options.RepeatPenalty != 1f || options.FrequencyPenalty != 0f || options.PresencePenalty != 0f)
        {
            Add(LlamaNative.llama_sampler_init_penalties(model.VocabularySize, options.RepeatLastN,
                options.RepeatPenalty, options.FrequencyPenalty, options.PresencePenalty));
        }
        if (options.Temperature == 0f)
        {
            Add(LlamaNative.llama_sampler_init_greedy());
            return;
        }
        if (options.TopK > 0)
        {
            Add(LlamaNative.llama_sampler_init_top_k(options.TopK));
        }
        Add(LlamaNative.llama_sampler_init_top_p(options.TopP, 1));
        Add(LlamaNative.llama_sampler_init_min_p(options.MinP, 1));
        Add(LlamaNative.llama_sampler_init_temp(options.Temperature));
        Add(LlamaNative.llama_sampler_init_dist(options.Seed ?? (uint)Random.Shared.Next()));
    }

    /// <summary>
    /// Parses a GBNF grammar with Heed's llama.cpp (no vocabulary needed to parse), for engines whose
    /// binding would otherwise take a grammar that does not parse without a word.
    /// </summary>
    /// <exception cref="ArgumentException">The grammar does not parse.</exception>
    internal static void EnsureGrammarParses(string grammar)
    {
        LlamaBackend.EnsureInitialized();
        IntPtr parsed = LlamaGrammarNative.llama_sampler_init_grammar(IntPtr.Zero, grammar, "root");
        if (parsed == IntPtr.Zero)
        {
            throw new ArgumentException("llama.cpp could not parse the GBNF grammar (GenerationOptions.Grammar); its log names the rule at fault.", nameof(grammar));
        }
        LlamaNative.llama_sampler_free(parsed);
    }

    private void Add(IntPtr sampler)
    {
        if (sampler == IntPtr.Zero)
        {
            throw new HeedNativeException("llama.cpp could not create a sampler.");
        }
        LlamaNative.llama_sampler_chain_add(_chain, sampler); // the chain owns it from here
    }

    /// <summary>Picks the next token from the logits of the last evaluated token, and records it.</summary>
    public int Sample(SafeLlamaContextHandle context) => LlamaNative.llama_sampler_sample(_chain, context, -1);

    public void Dispose() => _chain.Dispose();
}
