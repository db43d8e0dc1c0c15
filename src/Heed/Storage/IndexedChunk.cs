using Heed.Text;

namespace Heed.Storage;

/// <summary>A chunk as stored: its text and place, and its embedding when one was made.</summary>
internal sealed record IndexedChunk(TextChunk Chunk, float[]? Vector);
