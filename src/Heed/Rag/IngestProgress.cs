namespace Heed.Rag;

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
