namespace Heed.Storage;

/// <summary>What an index file holds: files in path order, and their chunks grouped by file in the same order.</summary>
internal sealed record IndexFileContents(string? EmbeddingModel, IReadOnlyList<IndexedFile> Files, IReadOnlyList<IndexedChunk> Chunks);
