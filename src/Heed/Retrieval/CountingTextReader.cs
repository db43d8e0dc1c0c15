namespace Heed.Retrieval;

/// <summary>A pass-through reader that counts the characters read, for progress over a stream.</summary>
internal sealed class CountingTextReader(TextReader inner) : TextReader
{
    public long CharactersRead { get; private set; }

    public override int Peek() => inner.Peek();

    public override int Read()
    {
        int c = inner.Read();
        if (c >= 0)
        {
            CharactersRead++;
        }
        return c;
    }

    public override int Read(char[] buffer, int index, int count)
    {
        int n = inner.Read(buffer, index, count);
        CharactersRead += n;
        return n;
    }

    public override int Read(Span<char> buffer)
    {
        int n = inner.Read(buffer);
        CharactersRead += n;
        return n;
    }

    public override int ReadBlock(char[] buffer, int index, int count)
    {
        int n = inner.ReadBlock(buffer, index, count);
        CharactersRead += n;
        return n;
    }
}
