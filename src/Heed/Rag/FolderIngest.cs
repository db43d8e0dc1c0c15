using Microsoft.Extensions.Logging;
using Heed.Text;
using Heed.Storage;

namespace Heed.Rag;

/// <summary>
/// Brings a store up to date with one folder: lists its supported files (recursively, hidden ones left out), keeps
/// unchanged files (same size and last-write time, or else the same SHA-256, and the same chunking), reads and
/// chunks new and changed ones, removes deleted ones, and skips binary and unreadable ones with a reason. Every
/// change goes through the store's writer, which decides when it becomes visible.
/// </summary>
internal sealed class FolderIngest(TextChunker chunker, DocumentLoader loader, string chunking, ILogger logger)
{
    public async Task<IngestResult> RunAsync(IKnowledgeStoreWriter writer, string root, Func<string, bool> exclude,
        IProgress<IngestProgress>? progress, CancellationToken cancellationToken)
    {
        string prefix = Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;
        string[] paths = Directory.EnumerateFiles(root, "*", new EnumerationOptions
            {
                RecurseSubdirectories = true,
                IgnoreInaccessible = true,
                AttributesToSkip = FileAttributes.Hidden | FileAttributes.System,
            })
            .Where(p => DocumentLoader.IsSupported(p) && !exclude(p))
            .Order(StringComparer.Ordinal)
            .ToArray();
        long bytesTotal = paths.Sum(SizeOrZero);

        IReadOnlyDictionary<string, IndexedFile> before = await writer.GetFilesUnderAsync(prefix, cancellationToken).ConfigureAwait(false);
        var added = new List<string>();
        var updated = new List<string>();
        var removed = before.Values.Where(f => Array.BinarySearch(paths, f.Path, StringComparer.Ordinal) < 0).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        var skipped = new List<SkippedFile>();
        int unchanged = 0, chunksAdded = 0, filesDone = 0;
        long bytesDone = 0;

        foreach (string path in paths)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = new FileInfo(path);
            before.TryGetValue(path, out IndexedFile? old);
            progress?.Report(new IngestProgress(IngestStage.Reading, filesDone, paths.Length, bytesDone, bytesTotal, path, chunksAdded));
            long size = 0;
            try
            {
                if (!info.Exists)
                {
                    throw new FileNotFoundException("the file is gone (deleted since the folder was listed, or a broken link)");
                }
                size = info.Length;
                bool sameChunking = old is not null && old.Chunking == chunking; // cut with other settings: read it again
                if (sameChunking && old!.Size == info.Length && old.LastWriteTimeUtc == info.LastWriteTimeUtc)
                {
                    unchanged++;
                }
                else
                {
                    string hash = ContentHasher.Sha256Hex(path, cancellationToken);
                    if (sameChunking && old!.ContentHash == hash)
                    {
                        await writer.RestampFileAsync(old with { Size = info.Length, LastWriteTimeUtc = info.LastWriteTimeUtc }, cancellationToken)
                            .ConfigureAwait(false);
                        unchanged++;
                    }
                    else
                    {
                        long fileStartBytes = bytesDone;
                        (IndexedFile? file, List<TextChunk>? chunks, SkippedFile? skip) = ReadFile(path, info, hash,
                            chunkEnd => progress?.Report(new IngestProgress(IngestStage.Reading, filesDone, paths.Length,
                                fileStartBytes + Math.Min(info.Length, chunkEnd), bytesTotal, path, chunksAdded)),
                            cancellationToken);
                        if (skip is not null)
                        {
                            skipped.Add(skip);
                            if (old is not null)
                            {
                                removed.Add(old);
                                await writer.RemoveFileAsync(path, cancellationToken).ConfigureAwait(false);
                            }
                        }
                        else
                        {
                            await writer.PutFileAsync(file!, chunks!, cancellationToken).ConfigureAwait(false);
                            chunksAdded += chunks!.Count;
                            (old is null ? added : updated).Add(path);
                        }
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // one unreadable file must not sink the ingest: report it and drop what the index had of it
                logger.LogWarning("Skipping {Path}: {Reason}", path, e.Message);
                skipped.Add(new SkippedFile(path, $"cannot be read: {e.Message}"));
                if (old is not null)
                {
                    removed.Add(old);
                    await writer.RemoveFileAsync(path, cancellationToken).ConfigureAwait(false);
                }
            }
            filesDone++;
            bytesDone += size;
        }
        foreach (IndexedFile gone in removed.Where(f => Array.BinarySearch(paths, f.Path, StringComparer.Ordinal) < 0))
        {
            await writer.RemoveFileAsync(gone.Path, cancellationToken).ConfigureAwait(false);
        }

        int chunksRemoved = removed.Sum(f => f.ChunkCount) + updated.Sum(p => before[p].ChunkCount);
        progress?.Report(new IngestProgress(IngestStage.Saving, filesDone, paths.Length, bytesTotal, bytesTotal, null, chunksAdded));
        (int totalFiles, long totalChunks) = await writer.CommitAsync(cancellationToken).ConfigureAwait(false);
        progress?.Report(new IngestProgress(IngestStage.Done, filesDone, paths.Length, bytesTotal, bytesTotal, null, chunksAdded));
        return new IngestResult(root, paths.Length, added, updated, removed.Select(f => f.Path).ToList(), unchanged, skipped,
            chunksAdded, chunksRemoved, totalFiles, checked((int)totalChunks));
    }

    private (IndexedFile?, List<TextChunk>?, SkippedFile?) ReadFile(string path, FileInfo info, string hash, Action<long> reportChunkEnd,
        CancellationToken cancellationToken)
    {
        using OpenedDocument? document = loader.Open(path, out SkippedFile? skip);
        if (document is null)
        {
            return (null, null, skip);
        }
        var chunks = new List<TextChunk>();
        foreach (TextChunk chunk in chunker.Chunk(document.Reader, path, cancellationToken))
        {
            chunks.Add(chunk);
            if (chunks.Count % 256 == 0)
            {
                reportChunkEnd(chunk.EndOffset);
            }
        }
        document.WarnIfInvalidUtf8(logger);
        return (new IndexedFile(path, info.Length, info.LastWriteTimeUtc, hash, document.Title, chunks.Count, chunking), chunks, null);
    }

    private static long SizeOrZero(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0; // reported when the file itself is read
        }
    }
}
