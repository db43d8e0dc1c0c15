using Heed.Text;

namespace Heed.Rag;

/// <summary>What an ingest changed.</summary>
/// <param name="Directory">The folder ingested (full path).</param>
/// <param name="FilesFound">Files with a supported extension found in it (recursively; hidden files left out).</param>
/// <param name="Added">Files indexed for the first time.</param>
/// <param name="Updated">Files whose content changed and were indexed again.</param>
/// <param name="Removed">Files that were indexed but are gone (or now binary), with their chunks removed.</param>
/// <param name="Unchanged">Files skipped because size and time, or else the content hash, matched.</param>
/// <param name="Skipped">Files not indexed, with the reason (binary files).</param>
/// <param name="ChunksAdded">New chunks.</param>
/// <param name="ChunksRemoved">Chunks dropped (of removed and updated files).</param>
/// <param name="TotalFiles">Files in the whole index afterwards.</param>
/// <param name="TotalChunks">Chunks in the whole index afterwards.</param>
public sealed record IngestResult(
    string Directory,
    int FilesFound,
    IReadOnlyList<string> Added,
    IReadOnlyList<string> Updated,
    IReadOnlyList<string> Removed,
    int Unchanged,
    IReadOnlyList<SkippedFile> Skipped,
    int ChunksAdded,
    int ChunksRemoved,
    int TotalFiles,
    int TotalChunks)
{
    /// <summary>True when the folder held no file Heed can read.</summary>
    public bool FoundNothing => FilesFound == 0;

    /// <summary>One line for people.</summary>
    public string Summary => FoundNothing
        ? $"No {string.Join(", ", DocumentLoader.SupportedExtensions)} files in {Directory}; nothing was indexed" +
          (Removed.Count > 0 ? $" and {Removed.Count} file(s) that were there before were removed." : ".")
        : $"{Added.Count} added, {Updated.Count} updated, {Removed.Count} removed, {Unchanged} unchanged, {Skipped.Count} skipped; " +
          $"+{ChunksAdded}/-{ChunksRemoved} chunks; the index now holds {TotalFiles} file(s), {TotalChunks} chunk(s).";
}

/// <summary>How far an ingest has come.</summary>
/// <param name="Stage">What it is doing.</param>
/// <param name="FilesDone">Files finished (read or skipped).</param>
/// <param name="FilesTotal">Files found.</param>
/// <param name="BytesDone">Bytes of the found files processed (within a file, estimated from the chunk offsets).</param>
/// <param name="BytesTotal">Bytes of all found files.</param>
/// <param name="CurrentFile">The file being read, or null.</param>
/// <param name="ChunksCreated">New chunks so far.</param>
public sealed record IngestProgress(IngestStage Stage, int FilesDone, int FilesTotal, long BytesDone, long BytesTotal, string? CurrentFile, int ChunksCreated)
{
    /// <summary>Fraction done, 0 to 1 (by bytes; 1 when there is nothing to read).</summary>
    public double Fraction => Stage == IngestStage.Done || BytesTotal == 0 ? 1 : Math.Clamp((double)BytesDone / BytesTotal, 0, 1);
}

/// <summary>What an ingest is doing.</summary>
public enum IngestStage
{
    /// <summary>Reading, hashing and chunking files.</summary>
    Reading,

    /// <summary>Committing to the store (the embedded store embeds the new chunks and writes its file here).</summary>
    Saving,

    /// <summary>Finished.</summary>
    Done,
}
