using System.Text;
using Heed.Llama;
using LLama;
using LLama.Native;

namespace Heed.LLamaSharp;

/// <summary>A LLamaSharp model's vocabulary as Heed's <see cref="ITokenizer"/>.</summary>
internal sealed class LLamaSharpTokenizer(LLamaWeights weights) : ITokenizer
{
    public int BeginningOfSequence { get; } = weights.Vocab.BOS is { } bos ? (int)bos : -1;

    public int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        LLamaToken[] tokens = weights.Tokenize(text, addSpecial, parseSpecial, Encoding.UTF8);
        return Array.ConvertAll(tokens, t => (int)t);
    }

    public bool IsEndOfGeneration(int token) => ((LLamaToken)token).IsEndOfGeneration(weights.Vocab);

    public byte[] TokenToBytes(int token)
    {
        Span<byte> piece = stackalloc byte[64];
        uint length = weights.NativeHandle.TokenToSpan(token, piece, 0, false);
        if (length > piece.Length)
        {
            piece = new byte[length];
            length = weights.NativeHandle.TokenToSpan(token, piece, 0, false);
        }
        return piece[..(int)length].ToArray();
    }
}
