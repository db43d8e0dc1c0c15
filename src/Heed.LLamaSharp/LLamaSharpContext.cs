using System.Runtime.CompilerServices;
using Heed.Llama;
using LLama.Native;

namespace Heed.LLamaSharp;

/// <summary>A LLamaSharp context as Heed's <see cref="IInferenceContext"/> (decode, remove and generate work on sequence 0).</summary>
internal sealed class LLamaSharpContext(SafeLLamaContextHandle handle, LLamaSharpTokenizer tokenizer, int sequenceCount) : IInferenceContext
{
    private static readonly LLamaSeqId Sequence = LLamaSeqId.Zero;

    public int ContextSize { get; } = (int)handle.ContextSize;

    public int NextPosition() => handle.MemorySequenceMaxPosition(Sequence).Value + 1;

    public void Evaluate(ReadOnlySpan<int> tokens, CancellationToken cancellationToken) =>
        EvaluateAt(tokens, 0, NextPosition(), cancellationToken);

    public int SequenceCount { get; } = sequenceCount;

    public int NextPosition(int sequence) => handle.MemorySequenceMaxPosition(Seq(sequence)).Value + 1;

    public void EvaluateAt(ReadOnlySpan<int> tokens, int sequence, int position, CancellationToken cancellationToken)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("There are no tokens to evaluate.", nameof(tokens));
        }
        LLamaSeqId seq = Seq(sequence);
        int start = position;
        if (start < NextPosition(sequence))
        {
            throw new ArgumentOutOfRangeException(nameof(position), position,
                $"Sequence {sequence} already holds positions up to {NextPosition(sequence) - 1}; decode at {NextPosition(sequence)} or later.");
        }
        if (start + tokens.Length > ContextSize)
        {
            throw new ArgumentException(
                $"{tokens.Length} tokens after {start} do not fit a context of {ContextSize}; remove tokens or use a larger ContextSize.",
                nameof(tokens));
        }
        int chunk = (int)handle.BatchSize;
        var batch = new LLamaBatch();
        try
        {
            for (int offset = 0; offset < tokens.Length; offset += chunk)
            {
                cancellationToken.ThrowIfCancellationRequested();
                batch.Clear();
                int n = Math.Min(chunk, tokens.Length - offset);
                for (int i = offset; i < offset + n; i++)
                {
                    batch.Add(tokens[i], start + i, seq, i == tokens.Length - 1);
                }
                DecodeResult result = handle.Decode(batch);
                if (result != DecodeResult.Ok)
                {
                    throw new HeedNativeException($"LLamaSharp's llama_decode failed: {result}.");
                }
            }
        }
        catch
        {
            // Leave the cache as it was before this call.
            handle.MemorySequenceRemove(seq, start, -1);
            throw;
        }
    }

    public void RemoveTokens(int sequence, int start, int end)
    {
        CheckRange(start, end);
        handle.MemorySequenceRemove(Seq(sequence), start, end);
    }

    public void CopySequence(int source, int destination, int start, int end)
    {
        CheckRange(start, end);
        handle.MemorySequenceCopy(Seq(source), Seq(destination), start, end);
    }

    public void ShiftPositions(int sequence, int start, int end, int delta)
    {
        CheckRange(start, end);
        handle.MemorySequenceAdd(Seq(sequence), start, end, delta);
    }

    public unsafe byte[] SaveSequenceState(int sequence)
    {
        LLamaSeqId seq = Seq(sequence);
        byte[] state = new byte[(int)handle.GetStateSize(seq)];
        fixed (byte* p = state)
        {
            nuint written = handle.GetState(p, (nuint)state.Length, seq);
            return state.AsSpan(0, (int)written).ToArray();
        }
    }

    public unsafe void LoadSequenceState(byte[] state, int sequence)
    {
        ArgumentNullException.ThrowIfNull(state);
        LLamaSeqId seq = Seq(sequence);
        if (state.Length == 0)
        {
            throw new ArgumentException("The state is empty.", nameof(state));
        }
        handle.MemorySequenceRemove(seq, -1, -1);
        fixed (byte* p = state)
        {
            if (handle.SetState(p, (nuint)state.Length, seq) == 0)
            {
                throw new ArgumentException("llama.cpp rejected this sequence state: it comes from another model, or the cache is too small.", nameof(state));
            }
        }
    }

    private LLamaSeqId Seq(int sequence)
    {
        if ((uint)sequence >= (uint)SequenceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Sequence ids must be in [0, {SequenceCount}); set SequenceCount for more.");
        }
        return (LLamaSeqId)sequence;
    }

    private static void CheckRange(int start, int end)
    {
        if (start < 0 || end < -1 || (end >= 0 && end < start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {end}) is not a range of positions (start >= 0, end >= start or -1).");
        }
    }

    public void RemoveTokens(int start, int end)
    {
        if (start < 0 || end < -1 || (end >= 0 && end < start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {end}) is not a range of positions (start >= 0, end >= start or -1).");
        }
        handle.MemorySequenceRemove(Sequence, start, end);
    }

    public void Clear() => handle.MemoryClear(true);

    public IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(prompt);
        options ??= new GenerationOptions();
        options.Validate();
        int[] tokens = tokenizer.Tokenize(prompt);
        if (tokens.Length >= ContextSize)
        {
            throw new ArgumentException($"The prompt is {tokens.Length} tokens; the context holds {ContextSize}.", nameof(prompt));
        }
        return StopSequenceFilter.TextAsync(GenerateTokensAsync(tokens, options, cancellationToken), t => tokenizer.TokenToBytes(t), options.StopSequences);
    }

    public IAsyncEnumerable<int> GenerateTokensAsync(int[] promptTokens, GenerationOptions? options, CancellationToken cancellationToken)
    {
        options = GenerationOptions.ForPrompt(options, promptTokens, ContextSize);
        // The sampler (and so a grammar error) is made before the stream starts.
        SafeLLamaSamplerChainHandle sampler = CreateSampler(options);
        return GenerateCoreAsync(promptTokens, options, sampler, cancellationToken);
    }

    private async IAsyncEnumerable<int> GenerateCoreAsync(int[] prompt, GenerationOptions options, SafeLLamaSamplerChainHandle chain,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using SafeLLamaSamplerChainHandle sampler = chain;
        Clear();
        await Task.Run(() => Evaluate(prompt, cancellationToken), cancellationToken).ConfigureAwait(false);
        int[] next = new int[1];
        for (int produced = 0; produced < options.MaxTokens; produced++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int token = (int)sampler.Sample(handle, -1);
            if (tokenizer.IsEndOfGeneration(token))
            {
                yield break;
            }
            yield return token;
            if (produced + 1 == options.MaxTokens || NextPosition() >= ContextSize)
            {
                yield break;
            }
            next[0] = token;
            await Task.Run(() => Evaluate(next, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
    }

    // The same chain as Heed's own engine builds from these options (TokenSampler).
    private SafeLLamaSamplerChainHandle CreateSampler(GenerationOptions options)
    {
        SafeLLamaSamplerChainHandle chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        if (options.Grammar is { Length: > 0 } grammar)
        {
            // LLamaSharp adds whatever llama.cpp returns, a null sampler for a grammar that does not
            // parse too, which would crash at the first sample: parse it first.
            try
            {
                TokenSampler.EnsureGrammarParses(grammar);
            }
            catch
            {
                chain.Dispose();
                throw;
            }
            // First in the chain: every later sampler sees only tokens the grammar allows.
            chain.AddGrammar(tokenizer.Weights.NativeHandle.Vocab, grammar, "root");
        }
        if (options.RepeatPenalty != 1f || options.FrequencyPenalty != 0f || options.PresencePenalty != 0f)
        {
            chain.AddPenalties(options.RepeatLastN, options.RepeatPenalty, options.FrequencyPenalty, options.PresencePenalty);
        }
        if (options.Temperature == 0f)
        {
            chain.AddGreedySampler();
            return chain;
        }
        if (options.TopK > 0)
        {
            chain.AddTopK(options.TopK);
        }
        chain.AddTopP(options.TopP, 1);
        chain.AddMinP(options.MinP, 1);
        chain.AddTemperature(options.Temperature);
        chain.AddDistributionSampler(options.Seed ?? (uint)Random.Shared.Next());
        return chain;
    }

    public void Dispose() => handle.Dispose();
}
