using System.Text;

namespace Heed.Llama;

/// <summary>
/// Holds back streamed text that could be the start of a stop sequence, so a stop sequence is
/// never emitted, even when it arrives split over several tokens.
/// </summary>
internal sealed class StopSequenceFilter(IReadOnlyList<string> stopSequences)
{
    private string _pending = "";

    /// <summary>
    /// Generated tokens as text: whole UTF-8 characters, cut before the first stop sequence.
    /// Each engine's generation streams through this one path.
    /// </summary>
    public static async IAsyncEnumerable<string> TextAsync(IAsyncEnumerable<int> tokens, Func<int, byte[]> tokenBytes,
        IReadOnlyList<string> stopSequences)
    {
        Decoder decoder = Encoding.UTF8.GetDecoder();
        var text = new StopSequenceFilter(stopSequences);
        await foreach (int token in tokens.ConfigureAwait(false))
        {
            byte[] bytes = tokenBytes(token);
            char[] chars = new char[decoder.GetCharCount(bytes, flush: false)];
            decoder.GetChars(bytes, chars, flush: false);
            (string ready, bool stop) = text.Push(new string(chars));
            if (ready.Length > 0)
            {
                yield return ready;
            }
            if (stop)
            {
                yield break;
            }
        }
        string rest = text.Flush();
        if (rest.Length > 0)
        {
            yield return rest;
        }
    }

    /// <summary>Adds text; returns what is safe to emit and whether a stop sequence was reached.</summary>
    public (string Ready, bool Stop) Push(string text)
    {
        if (stopSequences.Count == 0)
        {
            return (text, false);
        }
        _pending += text;
        int stopAt = -1;
        foreach (string stop in stopSequences)
        {
            int index = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (index >= 0 && (stopAt < 0 || index < stopAt))
            {
                stopAt = index;
            }
        }
        if (stopAt >= 0)
        {
            string ready = _pending[..stopAt];
            _pending = "";
            return (ready, true);
        }
        int keep = 0;
        foreach (string stop in stopSequences)
        {
            for (int length = Math.Min(stop.Length - 1, _pending.Length); length > keep; length--)
            {
                if (_pending.AsSpan(_pending.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    keep = length;
                    break;
                }
            }
        }
        string emit = _pending[..^keep];
        _pending = _pending[^keep..];
        return (emit, false);
    }

    /// <summary>The held-back text once generation ended without a stop sequence.</summary>
    public string Flush()
    {
        string rest = _pending;
        _pending = "";
        return rest;
    }
}
