using Microsoft.Extensions.Logging;
using Heed.Text;
using Heed.Storage;

namespace Heed.Rag;

/// <summary>
/// Brings an index snapshot up to date with one folder: lists its supported files (recursively, hidden ones left
/// out), keeps unchanged files (same size and last-write time, or else the same SHA-256, and the same chunking),
/// reads and chunks new and changed ones, drops deleted ones, skips binary and unreadable ones with a reason, and
/// embeds what needs it. It builds new contents and changes nothing it was given.
/// </summary>
internal sealed class FolderIngest(TextChunker chunker, DocumentLoader loader, string chunking, ChunkEmbedder? embedder, ILogger logger)
{
    public async Task<(IndexFileContents Contents, IngestResult Result, long BytesTotal)> RunAsync(IndexSnapshot before, string root,
        Func<string, bool> exclude, IProgress<IngestProgress>? progress, CancellationToken cancellationToken)
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

        // start from every file outside this folder; files inside it are kept only if still there
        var files = new SortedDictionary<string, (IndexedFile File, List<IndexedChunk> Chunks)>(StringComparer.Ordinal);
        foreach (IndexedFile file in before.Contents.Files.Where(f => !f.Path.StartsWith(prefix, StringComparison.Ordinal)))
        {
            files[file.Path] = (file, before.ChunksOf(file).ToList());
        }
        var added = new List<string>();
        var updated = new List<string>();
        var removed = before.Contents.Files
            .Where(f => f.Path.StartsWith(prefix, StringComparison.Ordinal) && Array.BinarySearch(paths, f.Path, StringComparer.Ordinal) < 0)
            .ToList();
        var skipped = new List<SkippedFile>();
        int unchanged = 0, chunksAdded = 0, filesDone = 0;
        long bytesDone = 0;

        foreach (string path in paths)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = new FileInfo(path);
            before.Files.TryGetValue(path, out IndexedFile? old);
            progress?.Report(new IngestProgress(IngestStage.Reading, filesDone, paths.Length, bytesDone, bytesTotal, path, chunksAdded));
            long size = 0;
            try
            {
                if (!info.Exists)
                {
                    throw new FileNotFoundException("the file is gone (deleted since the folder was listed, or a broken link)");
                }
                size = info.Length;
                if (old is not null && old.Chunking != chunking)
                {
                    old = old with { ContentHash = "" }; // cut with other settings: read it again
                }
                if (old is not null && old.Size == info.Length && old.LastWriteTimeUtc == info.LastWriteTimeUtc && old.ContentHash.Length > 0)
                {
                    files[path] = (old, before.ChunksOf(old).ToList());
                    unchanged++;
                }
                else
                {
                    string hash = ContentHasher.Sha256Hex(path, cancellationToken);
                    if (old is not null && old.ContentHash == hash)
                    {
                        files[path] = (old with { Size = info.Length, LastWriteTimeUtc = info.LastWriteTimeUtc }, before.ChunksOf(old).ToList());
                        unchanged++;
                    }
                    else
                    {
                        long fileStartBytes = bytesDone;
                        (IndexedFile? file, List<IndexedChunk>? chunks, SkippedFile? skip) = ReadFile(path, info, hash,
                            chunkEnd => progress?.Report(new IngestProgress(IngestStage.Reading, filesDone, paths.Length,
                                fileStartBytes + Math.Min(info.Length, chunkEnd), bytesTotal, path, chunksAdded)),
                            cancellationToken);
                        if (skip is not null)
                        {
                            skipped.Add(skip);
                            if (old is not null)
                            {
                                removed.Add(old);
                            }
                        }
                        else
                        {
                            files[path] = (file!, chunks!);
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
                files.Remove(path);
                if (old is not null)
                {
                    removed.Add(old);
                }
            }
            filesDone++;
            bytesDone += size;
        }

        var updatedSet = new HashSet<string>(updated, StringComparer.Ordinal);
        int chunksRemoved = removed.Sum(f => f.ChunkCount) + before.Contents.Files.Where(f => updatedSet.Contains(f.Path)).Sum(f => f.ChunkCount);
        List<IndexedFile> fileList = files.Values.Select(v => v.File).ToList();
        List<IndexedChunk> chunkList = files.Values.SelectMany(v => v.Chunks).ToList();
        string? embeddingModel = before.Contents.EmbeddingModel;
        if (embedder is not null)
        {
            await embedder.EmbedMissingAsync(chunkList, embeddingModel,
                () => progress?.Report(new IngestProgress(IngestStage.Embedding, filesDone, paths.Length, bytesTotal, bytesTotal, null, chunksAdded)),
                cancellationToken).ConfigureAwait(false);
            embeddingModel = embedder.ModelId;
        }
        var contents = new IndexFileContents(embeddingModel, fileList, chunkList);
        var result = new IngestResult(root, paths.Length, added, updated, removed.Select(f => f.Path).ToList(), unchanged, skipped,
            chunksAdded, chunksRemoved, fileList.Count, chunkList.Count);
        return (contents, result, bytesTotal);
    }

    private (IndexedFile?, List<IndexedChunk>?, SkippedFile?) ReadFile(string path, FileInfo info, string hash, Action<long> reportChunkEnd,
        CancellationToken cancellationToken)
    {
        using OpenedDocument? document = loader.Open(path, out SkippedFile? skip);
        if (document is null)
        {
            return (null, null, skip);
        }
        var chunks = new List<IndexedChunk>();
        foreach (TextChunk chunk in chunker.Chunk(document.Reader, path, cancellationToken))
        {
            chunks.Add(new IndexedChunk(chunk, null));
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
