namespace Heed.Storage;

/// <summary>A file the index holds, with what incremental ingest compares to tell whether it changed.</summary>
/// <param name="Path">Its full path.</param>
/// <param name="Size">Its size in bytes when indexed.</param>
/// <param name="LastWriteTimeUtc">Its last-write time when indexed.</param>
/// <param name="ContentHash">SHA-256 of its bytes, lowercase hex.</param>
/// <param name="Title">Its title (HTML title or first Markdown heading), or null.</param>
/// <param name="ChunkCount">How many chunks it gave.</param>
/// <param name="Chunking">
/// The chunking it was cut with (budget, overlap, token counter); a file cut with other settings than the pipeline's
/// is cut again on the next ingest even when its content is unchanged.
/// </param>
public sealed record IndexedFile(string Path, long Size, DateTime LastWriteTimeUtc, string ContentHash, string? Title, int ChunkCount, string Chunking);
