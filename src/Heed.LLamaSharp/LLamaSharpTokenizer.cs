using System.Text;
using Heed.Llama;
using LLama;
using LLama.Native;

namespace Heed.LLamaSharp;

/// <summary>A LLamaSharp model's vocabulary as Heed's <see cref="ITokenizer"/>.</summary>
internal sealed class LLamaSharpTokenizer(LLamaWeights weights) : ITokenizer
{
    public LLamaWeights Weights => weights;

    public int BeginningOfSequence { get; } = weights.Vocab.BOS is { } bos ? (int)bos : -1;

    public bool AddsBeginningOfSequence { get; } = weights.Vocab.ShouldAddBOS;

    public int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        LLamaToken[] tokens = weights.Tokenize(text, addSpecial, parseSpecial, Encoding.UTF8);
        return Array.ConvertAll(tokens, t => (int)t);
    }

    public bool IsEndOfGeneration(int token) => ((LLamaToken)token).IsEndOfGeneration(weights.Vocab);

    public byte[] TokenToBytes(int token, bool renderSpecial = false)
    {
        if ((uint)token >= (uint)weights.Vocab.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"Token ids are in [0, {weights.Vocab.Count}).");
        }
        Span<byte> piece = stackalloc byte[64];
        uint length = weights.NativeHandle.TokenToSpan(token, piece, 0, renderSpecial);
        if (length > piece.Length)
        {
            piece = new byte[length];
            length = weights.NativeHandle.TokenToSpan(token, piece, 0, renderSpecial);
        }
        return piece[..(int)length].ToArray();
    }
}
