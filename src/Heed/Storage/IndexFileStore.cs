using Microsoft.Extensions.Logging;

namespace Heed.Storage;

/// <summary>
/// Keeps an index in one file with crash-safe replacement: the new index is written to "&lt;path&gt;.tmp" and
/// flushed to disk (fsync), the current good file is renamed to "&lt;path&gt;.bak", and the temporary file is
/// renamed over the path (atomic on one file system). A crash at any step leaves either the old index or its
/// .bak copy readable, and loading falls back to the .bak when the main file is missing or corrupt.
/// </summary>
internal sealed class IndexFileStore
{
    private readonly ILogger _logger;
    private bool _mainFileIsGood; // only a good main file may become the .bak: a corrupt one must not replace the last good copy
    private (long Length, DateTime LastWriteUtc)? _seen; // the main file as this store last read or wrote it

    public IndexFileStore(string path, ILogger logger)
    {
        Path = path;
        _logger = logger;
    }

    public string Path { get; }

    public string BackupPath => Path + ".bak";

    public string TempPath => Path + ".tmp";

    /// <summary>Held (exclusively) while an ingest writes, so that two processes never save over each other.</summary>
    public string LockPath => Path + ".lock";

    /// <summary>Whether the last <see cref="Load"/> had to use the .bak copy.</summary>
    public bool RecoveredFromBackup { get; private set; }

    /// <summary>The stored index; null when neither the file nor its backup exists (a new index).</summary>
    /// <exception cref="HeedIndexCorruptException">The file is corrupt and there is no good backup (or fallback is off).</exception>
    public IndexFileContents? Load(bool fallBackToBackup)
    {
        _seen = Stamp();
        RecoveredFromBackup = false;
        _mainFileIsGood = false;
        bool hasMain = File.Exists(Path);
        bool hasBackup = File.Exists(BackupPath);
        if (!hasMain && !hasBackup)
        {
            return null;
        }
        if (hasMain)
        {
            try
            {
                IndexFileContents contents = IndexFileFormat.Read(Path);
                _mainFileIsGood = true;
                return contents;
            }
            catch (HeedIndexCorruptException e) when (fallBackToBackup && hasBackup)
            {
                _logger.LogWarning("{Message} Using the last good copy {Backup} instead.", e.Message, BackupPath);
                return LoadBackup(e);
            }
        }
        if (!fallBackToBackup)
        {
            throw new HeedIndexCorruptException(Path,
                $"The index file {Path} is missing but its backup {BackupPath} exists (an interrupted save). " +
                $"Open it with fallback to the backup enabled, or rename {BackupPath} to {Path}.");
        }
        _logger.LogWarning("The index file {Path} is missing (an interrupted save); using the last good copy {Backup}.", Path, BackupPath);
        return LoadBackup(null);
    }

    /// <summary>Writes the index crash-safely (see the class summary).</summary>
    public void Save(IndexFileContents contents)
    {
        string? directory = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        try
        {
            using var stream = new FileStream(TempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            IndexFileFormat.Write(stream, contents);
            stream.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(TempPath);
            throw new IOException($"Could not write the index {Path} ({e.Message}); the previous index is unchanged. " +
                                  "Check that its folder is writable and has free space, then ingest again.", e);
        }
        if (_mainFileIsGood && File.Exists(Path))
        {
            File.Move(Path, BackupPath, overwrite: true);
        }
        File.Move(TempPath, Path, overwrite: true);
        _mainFileIsGood = true;
        _seen = Stamp();
    }

    /// <summary>Whether another writer (another process, or another pipeline on the same file) saved since we read or wrote.</summary>
    public bool ChangedOnDisk() => Stamp() != _seen;

    /// <summary>
    /// Takes the write lock (an exclusive lock on "&lt;path&gt;.lock", released when the result is disposed).
    /// The lock file itself stays: deleting it would let two writers lock two different files.
    /// </summary>
    /// <exception cref="IOException">Another writer holds it.</exception>
    public IDisposable AcquireWriteLock()
    {
        string? directory = System.IO.Path.GetDirectoryName(LockPath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        try
        {
            return new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"Another process is writing the index {Path} (it holds {LockPath}); wait for it to finish and ingest again.", e);
        }
    }

    private (long, DateTime)? Stamp()
    {
        var info = new FileInfo(Path);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : null;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a leftover temporary file is harmless: loading never reads it and the next save overwrites it
        }
    }

    private IndexFileContents LoadBackup(HeedIndexCorruptException? mainError)
    {
        try
        {
            IndexFileContents contents = IndexFileFormat.Read(BackupPath);
            RecoveredFromBackup = true;
            return contents;
        }
        catch (HeedIndexCorruptException backupError)
        {
            string main = mainError?.Message ?? $"The index file {Path} is missing.";
            throw new HeedIndexCorruptException(Path,
                $"{main} Its backup is no good either: {backupError.Message} " +
                $"Delete {Path} and {BackupPath} and run `heed rag ingest` again to rebuild the index from your documents.",
                mainError ?? backupError);
        }
    }
}
