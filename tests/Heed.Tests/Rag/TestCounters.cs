namespace Heed.Tests.Rag;

/// <summary>Token counters for tests whose expected chunks are worked out by hand.</summary>
internal static class TestCounters
{
    /// <summary>One token per whitespace-separated word.</summary>
    public static int Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
}
