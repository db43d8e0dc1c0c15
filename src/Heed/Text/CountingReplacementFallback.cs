using System.Text;

namespace Heed.Text;

/// <summary>
/// Replaces each invalid byte sequence with U+FFFD, like the default decoder, but counts them so the loader
/// can warn that a file is not valid UTF-8. One instance per decoder (the count is not shared safely).
/// </summary>
internal sealed class CountingReplacementFallback : DecoderFallback
{
    public int Count { get; private set; }

    public override int MaxCharCount => 1;

    public override DecoderFallbackBuffer CreateFallbackBuffer() => new Buffer(this);

    private sealed class Buffer(CountingReplacementFallback owner) : DecoderFallbackBuffer
    {
        private bool _pending;

        public override int Remaining => _pending ? 1 : 0;

        public override bool Fallback(byte[] bytesUnknown, int index)
        {
            owner.Count++;
            _pending = true;
            return true;
        }

        public override char GetNextChar()
        {
            if (!_pending)
            {
                return '\0';
            }
            _pending = false;
            return '\uFFFD';
        }

        public override bool MovePrevious() => false;

        public override void Reset() => _pending = false;
    }
}
