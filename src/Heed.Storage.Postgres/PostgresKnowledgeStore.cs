using System.Text;
using Heed.Storage;
using Heed.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;
using Pgvector;
using Pgvector.Npgsql;

namespace Heed.Storage.Postgres;

/// <summary>
/// A knowledge base in PostgreSQL with pgvector, shared by every process that opens the same database. Chunks are
/// searched by full text (a GIN index over a tsvector column, ranked by BM25 computed in SQL) and by vector (a
/// pgvector HNSW index, cosine distance), both fused by reciprocal rank in one round trip. Ingest commits files in
/// groups, each group in one transaction (a file's chunks and embeddings all visible or none); writers of the same
/// file take turns under an advisory lock, so processes ingesting at once lose and duplicate nothing.
/// </summary>
public sealed class PostgresKnowledgeStore : IKnowledgeStore
{
    private const long VectorIndexLock = 0x48656564_00000002; // "Heed", 2

    /// <summary>pgvector's largest hnsw.ef_search; a base of at most this many chunks is searched exhaustively.</summary>
    private const int MaxEfSearch = 1000;

    /// <summary>
    /// A term in more chunks than this is not searched on its own when the query has a rarer one: it bounds the chunks
    /// one keyword search reads (see heed_keyword_search); scoring costs about 25 µs a chunk on a loaded 2-core machine.
    /// </summary>
    private const long CommonTermChunks = 2_000;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;

    private PostgresKnowledgeStore(NpgsqlDataSource dataSource, string location, ILogger logger)
    {
        _dataSource = dataSource;
        Location = location;
        _logger = logger;
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <summary>
    /// Connects, enables pgvector if needed and creates or migrates Heed's tables.
    /// </summary>
    /// <param name="connectionString">An Npgsql connection string, e.g. "Host=db;Database=heed;Username=app;Password=…".</param>
    /// <param name="logger">Receives warnings; null discards them.</param>
    /// <param name="cancellationToken">Stops connecting.</param>
    /// <exception cref="ArgumentException">The connection string is malformed.</exception>
    /// <exception cref="HeedStoreException">The server cannot be reached or refuses the login, lacks pgvector, or holds a newer schema.</exception>
    public static async Task<PostgresKnowledgeStore> OpenAsync(string connectionString, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new ArgumentException($"The PostgreSQL connection string is malformed ({e.Message}); " +
                                        "write it as \"Host=…;Port=5432;Database=…;Username=…;Password=…\".", nameof(connectionString), e);
        }
        string location = $"postgresql://{settings.Username}@{settings.Host}:{settings.Port}/{settings.Database ?? settings.Username}";
        try
        {
            // migrate over a plain connection first: the vector type can only be mapped once the extension exists
            await using (var plain = new NpgsqlConnection(connectionString))
            {
                await plain.OpenAsync(cancellationToken).ConfigureAwait(false);
                await PostgresSchema.MigrateAsync(plain, location, cancellationToken).ConfigureAwait(false);
            }
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            builder.UseVector();
            return new PostgresKnowledgeStore(builder.Build(), location, logger ?? NullLogger.Instance);
        }
        catch (Exception e) when (e is NpgsqlException and not PostgresException || e is PostgresException { SqlState: "28P01" or "28000" or "3D000" })
        {
            throw new HeedStoreException($"Cannot open the knowledge base at {location}: {e.Message}. " +
                                         "Check the host, port, database, user and password in the connection string, and that the server runs.", e);
        }
    }

    /// <inheritdoc />
    public bool IsStoreFile(string path) => false;

    /// <inheritdoc />
    public Task<IKnowledgeStoreWriter> BeginIngestAsync(ChunkEmbeddings? embeddings, CancellationToken cancellationToken) =>
        Task.FromResult<IKnowledgeStoreWriter>(new Writer(this, embeddings is null ? null : new ChunkEmbedder(embeddings, _logger)));

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoreHit>> SearchAsync(string query, QueryEmbedding? embedding, int count, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ReadOnlyMemory<float>? vector = null; // not "embedding is null ? null : …": null would become an empty ReadOnlyMemory
        if (embedding is not null)
        {
            vector = await embedding.Embed(cancellationToken).ConfigureAwait(false);
        }
        await using NpgsqlBatch batch = _dataSource.CreateBatch();
        if (vector is not null)
        {
            // HNSW keeps ef_search candidates: on a small base as many as it holds, so that it visits every vector
            // and finds what the exact scan finds; else a few times what is asked. Iterative scans go on when the
            // model filter drops some.
            var settings = new NpgsqlBatchCommand(
                $"SELECT set_config('hnsw.ef_search', (CASE WHEN (SELECT chunks FROM heed_totals) <= {MaxEfSearch} THEN {MaxEfSearch} " +
                $"ELSE least({MaxEfSearch}, greatest(100, 4 * $1)) END)::text, false), set_config('hnsw.iterative_scan', 'relaxed_order', false)");
            settings.Parameters.Add(new NpgsqlParameter { Value = count });
            batch.BatchCommands.Add(settings);
        }
        var search = new NpgsqlBatchCommand(SearchSql(vector?.Length));
        search.Parameters.Add(new NpgsqlParameter { Value = query });
        search.Parameters.Add(new NpgsqlParameter { Value = count });
        if (vector is not null)
        {
            search.Parameters.Add(new NpgsqlParameter { Value = new Vector(vector.Value) });
            search.Parameters.Add(new NpgsqlParameter { Value = embedding!.ModelId });
        }
        batch.BatchCommands.Add(search);
        var hits = new List<StoreHit>();
        await using NpgsqlDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (vector is not null)
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        }
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var chunk = new TextChunk(reader.GetString(4), reader.GetInt32(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetString(8));
            double? lexical = reader.IsDBNull(2) ? null : reader.GetDouble(2);
            double? similarity = reader.IsDBNull(3) ? null : reader.GetDouble(3);
            hits.Add(new StoreHit(chunk, reader.GetDouble(1), lexical, similarity));
        }
        return hits;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<IndexedFile>> GetFilesAsync(CancellationToken cancellationToken) =>
        (await ReadFilesAsync(null, cancellationToken).ConfigureAwait(false)).Values.ToList();

    /// <inheritdoc />
    public async Task<long> CountChunksAsync(CancellationToken cancellationToken)
    {
        await using NpgsqlCommand command = _dataSource.CreateCommand("SELECT chunks FROM heed_totals");
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Closes the connection pool.</summary>
    public void Dispose() => _dataSource.Dispose();

    /// <summary>
    /// Keyword candidates ranked by BM25 (heed_keyword_search: Heed's k1 and b, IDF from the per-term chunk counts,
    /// lengths from the stored term counts) and, with a vector of <paramref name="dimensions"/>, the nearest embeddings
    /// from the HNSW index of that size, fused by reciprocal rank (k = 60) as the embedded store fuses them: scores
    /// summed in float8 in the same order, and every tie (BM25, distance, fused score) broken by path, then ordinal,
    /// the embedded store's chunk order. HNSW may hand back tied vectors in any order, so it is asked for twice the
    /// count and its candidates are ordered again exactly.
    /// Parameters: $1 query text, $2 count, $3 query vector, $4 embedding model.
    /// </summary>
    private static string SearchSql(int? dimensions)
    {
        var sql = new StringBuilder($"WITH lexical AS (SELECT chunk_id AS id, score, rank FROM heed_keyword_search($1, $2, {CommonTermChunks}))");
        if (dimensions is int d)
        {
            sql.Append($"""
                ,
                dense_candidates AS (
                    SELECT e.chunk_id AS id, e.embedding::vector({d}) <=> $3 AS distance
                    FROM heed_embeddings e
                    WHERE e.dimensions = {d} AND e.model = $4
                    ORDER BY e.embedding::vector({d}) <=> $3
                    LIMIT 2 * $2),
                dense AS (
                    SELECT r.id, r.similarity, r.rank FROM (
                        SELECT d.id, 1 - d.distance AS similarity, row_number() OVER (ORDER BY d.distance, f.path, c.ordinal) AS rank
                        FROM dense_candidates d JOIN heed_chunks c ON c.id = d.id JOIN heed_files f ON f.id = c.file_id
                        WHERE d.distance <> 'NaN'::float8) r -- a zero vector has no direction: no similarity
                    WHERE r.rank <= $2),
                found AS (
                    SELECT coalesce(l.id, d.id) AS id,
                           coalesce(1::float8 / (60 + l.rank), 0) + coalesce(1::float8 / (60 + d.rank), 0) AS score, l.score AS lexical, d.similarity
                    FROM lexical l FULL JOIN dense d ON l.id = d.id)
                """);
        }
        else
        {
            sql.Append(",\nfound AS (SELECT id, score, score AS lexical, NULL::float8 AS similarity FROM lexical)");
        }
        sql.Append("""

            SELECT f.id, f.score::float8, f.lexical::float8, f.similarity::float8, fi.path, c.ordinal, c.start_offset, c.end_offset, c.text
            FROM found f JOIN heed_chunks c ON c.id = f.id JOIN heed_files fi ON fi.id = c.file_id
            ORDER BY f.score DESC, fi.path, c.ordinal
            LIMIT $2
            """);
        return sql.ToString();
    }

    private async Task<SortedDictionary<string, IndexedFile>> ReadFilesAsync(string? prefix, CancellationToken cancellationToken)
    {
        await using NpgsqlCommand command = _dataSource.CreateCommand(
            "SELECT path, size, last_write_ticks, content_hash, title, chunk_count, chunking FROM heed_files " +
            "WHERE $1::text IS NULL OR left(path, length($1)) = $1 ORDER BY path");
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)prefix ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var files = new SortedDictionary<string, IndexedFile>(StringComparer.Ordinal);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var file = new IndexedFile(reader.GetString(0), reader.GetInt64(1), new DateTime(reader.GetInt64(2), DateTimeKind.Utc), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetInt32(5), reader.GetString(6));
            files[file.Path] = file;
        }
        return files;
    }

    /// <summary>
    /// Writes files in groups, each group in one transaction (a file's chunks and embeddings visible all or none; a
    /// round trip and a commit paid per group, not per file), the chunks and embeddings by binary COPY. Writers of the
    /// same file take turns under its advisory lock; every transaction that changes the BM25 statistics updates
    /// heed_totals before heed_terms, so their row locks are taken in one order and writers never deadlock.
    /// </summary>
    private sealed class Writer(PostgresKnowledgeStore store, ChunkEmbedder? embedder) : IKnowledgeStoreWriter
    {
        // a group: a few thousand chunks, so that memory stays small and a killed ingest loses little
        private const int GroupChunks = 4096;
        private const int GroupFiles = 256;

        private readonly List<(IndexedFile File, List<IndexedChunk> Chunks)> _puts = [];
        private readonly List<string> _removals = [];
        private readonly HashSet<int> _vectorSizes = [];
        private int _pendingChunks;

        public async Task<IReadOnlyDictionary<string, IndexedFile>> GetFilesUnderAsync(string folderPrefix, CancellationToken cancellationToken) =>
            await store.ReadFilesAsync(folderPrefix, cancellationToken).ConfigureAwait(false);

        public async Task PutFileAsync(IndexedFile file, IReadOnlyList<TextChunk> chunks, CancellationToken cancellationToken)
        {
            List<IndexedChunk> embedded = chunks.Select(c => new IndexedChunk(c, null)).ToList();
            if (embedder is not null)
            {
                await embedder.EmbedMissingAsync(embedded, null, cancellationToken).ConfigureAwait(false);
                if (embedded.Count > 0)
                {
                    _vectorSizes.Add(embedded[0].Vector!.Length);
                }
            }
            Forget(file.Path);
            _puts.Add((file, embedded));
            _pendingChunks += embedded.Count;
            await FlushIfFullAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task RestampFileAsync(IndexedFile file, CancellationToken cancellationToken)
        {
            await using NpgsqlCommand command = store._dataSource.CreateCommand(
                "UPDATE heed_files SET size = $2, last_write_ticks = $3 WHERE path = $1 AND content_hash = $4");
            command.Parameters.Add(new NpgsqlParameter { Value = file.Path });
            command.Parameters.Add(new NpgsqlParameter { Value = file.Size });
            command.Parameters.Add(new NpgsqlParameter { Value = file.LastWriteTimeUtc.Ticks });
            command.Parameters.Add(new NpgsqlParameter { Value = file.ContentHash });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task RemoveFileAsync(string path, CancellationToken cancellationToken)
        {
            Forget(path);
            _removals.Add(path);
            await FlushIfFullAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task<(int Files, long Chunks)> CommitAsync(CancellationToken cancellationToken)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
            foreach (int dimensions in _vectorSizes)
            {
                await EnsureVectorIndexAsync(dimensions, cancellationToken).ConfigureAwait(false);
            }
            await using NpgsqlCommand command = store._dataSource.CreateCommand("SELECT (SELECT count(*) FROM heed_files), chunks FROM heed_totals");
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (checked((int)reader.GetInt64(0)), reader.GetInt64(1));
        }

        /// <summary>Drops what was not flushed: never committed, so never visible.</summary>
        public ValueTask DisposeAsync()
        {
            _puts.Clear();
            _removals.Clear();
            return ValueTask.CompletedTask;
        }

        /// <summary>A later put or removal of a path replaces an earlier one not yet written.</summary>
        private void Forget(string path)
        {
            int i = _puts.FindIndex(p => p.File.Path == path);
            if (i >= 0)
            {
                _pendingChunks -= _puts[i].Chunks.Count;
                _puts.RemoveAt(i);
            }
            _removals.Remove(path);
        }

        private Task FlushIfFullAsync(CancellationToken cancellationToken) =>
            _pendingChunks >= GroupChunks || _puts.Count + _removals.Count >= GroupFiles ? FlushAsync(cancellationToken) : Task.CompletedTask;

        /// <summary>Writes the pending files and removals in one transaction.</summary>
        private async Task FlushAsync(CancellationToken cancellationToken)
        {
            if (_puts.Count == 0 && _removals.Count == 0)
            {
                return;
            }
            string[] paths = _puts.Select(p => p.File.Path).Concat(_removals).ToArray();
            await using NpgsqlConnection connection = await store._dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            long[] fileIds, chunkIds;
            await using (NpgsqlBatch batch = new(connection, transaction))
            {
                // the paths' locks in one global order (their keys sorted), so that two writers never wait on each other in a cycle
                Add(batch, "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(p, 0) AS k FROM unnest($1::text[]) p ORDER BY 1) s", paths);
                // what the old versions added to the BM25 statistics comes off; only when there are old versions, so
                // that a group of new files takes the totals row (and waits for other writers) after its COPY
                Add(batch, "UPDATE heed_totals SET chunks = chunks - s.n, terms = terms - s.t FROM (SELECT count(*) AS n, coalesce(sum(c.term_count), 0) AS t " +
                           "FROM heed_chunks c JOIN heed_files f ON f.id = c.file_id WHERE f.path = ANY($1)) s WHERE s.n > 0", paths);
                Add(batch, "UPDATE heed_terms h SET chunks = h.chunks - g.n FROM (SELECT u.lexeme, count(*) AS n FROM heed_chunks c JOIN heed_files f ON f.id = c.file_id " +
                           "CROSS JOIN LATERAL unnest(c.search) u WHERE f.path = ANY($1) GROUP BY u.lexeme) g WHERE h.lexeme = g.lexeme", paths);
                Add(batch, "DELETE FROM heed_files WHERE path = ANY($1)", paths); // chunks and embeddings go with them
                Add(batch, "SELECT array(SELECT nextval('heed_files_id_seq') FROM generate_series(1, $1))", _puts.Count);
                Add(batch, "SELECT array(SELECT nextval('heed_chunks_id_seq') FROM generate_series(1, $1))", _pendingChunks);
                await using NpgsqlDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                fileIds = await ReadIdsAsync(reader, cancellationToken).ConfigureAwait(false);
                chunkIds = await ReadIdsAsync(reader, cancellationToken).ConfigureAwait(false);
            }
            if (_puts.Count > 0)
            {
                await CopyAsync(connection, fileIds, chunkIds, cancellationToken).ConfigureAwait(false);
                await using NpgsqlBatch batch = new(connection, transaction);
                Add(batch, "UPDATE heed_totals SET chunks = chunks + s.n, terms = terms + s.t " +
                           "FROM (SELECT count(*) AS n, coalesce(sum(term_count), 0) AS t FROM heed_chunks WHERE file_id = ANY($1)) s", fileIds);
                // in lexeme order, after the totals row: the same lock order in every writer
                Add(batch, "INSERT INTO heed_terms (lexeme, chunks) SELECT u.lexeme, count(*) FROM heed_chunks c CROSS JOIN LATERAL unnest(c.search) u " +
                           "WHERE c.file_id = ANY($1) GROUP BY u.lexeme ORDER BY u.lexeme " +
                           "ON CONFLICT (lexeme) DO UPDATE SET chunks = heed_terms.chunks + excluded.chunks", fileIds);
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            _puts.Clear();
            _removals.Clear();
            _pendingChunks = 0;
        }

        /// <summary>The files, chunks and embeddings of the pending puts, by binary COPY, under the ids drawn for them.</summary>
        private async Task CopyAsync(NpgsqlConnection connection, long[] fileIds, long[] chunkIds, CancellationToken cancellationToken)
        {
            await using (NpgsqlBinaryImporter files = await connection.BeginBinaryImportAsync(
                             "COPY heed_files (id, path, size, last_write_ticks, content_hash, title, chunk_count, chunking) FROM STDIN (FORMAT BINARY)",
                             cancellationToken).ConfigureAwait(false))
            {
                for (int i = 0; i < _puts.Count; i++)
                {
                    IndexedFile file = _puts[i].File;
                    await files.StartRowAsync(cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(fileIds[i], NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(file.Path, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(file.Size, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(file.LastWriteTimeUtc.Ticks, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(file.ContentHash, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    if (file.Title is null)
                    {
                        await files.WriteNullAsync(cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await files.WriteAsync(file.Title, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    }
                    await files.WriteAsync(file.ChunkCount, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                    await files.WriteAsync(file.Chunking, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                }
                await files.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
            await using (NpgsqlBinaryImporter chunks = await connection.BeginBinaryImportAsync(
                             "COPY heed_chunks (id, file_id, ordinal, start_offset, end_offset, text) FROM STDIN (FORMAT BINARY)",
                             cancellationToken).ConfigureAwait(false))
            {
                int next = 0;
                for (int i = 0; i < _puts.Count; i++)
                {
                    foreach (IndexedChunk chunk in _puts[i].Chunks)
                    {
                        await chunks.StartRowAsync(cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(chunkIds[next++], NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(fileIds[i], NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(chunk.Chunk.Ordinal, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(chunk.Chunk.StartOffset, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(chunk.Chunk.EndOffset, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync(chunk.Chunk.Text, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    }
                }
                await chunks.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
            if (embedder is null)
            {
                return;
            }
            await using (NpgsqlBinaryImporter vectors = await connection.BeginBinaryImportAsync(
                             "COPY heed_embeddings (chunk_id, model, dimensions, embedding) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false))
            {
                int next = 0;
                foreach (IndexedChunk chunk in _puts.SelectMany(p => p.Chunks))
                {
                    long id = chunkIds[next++];
                    if (chunk.Vector is null)
                    {
                        continue;
                    }
                    await vectors.StartRowAsync(cancellationToken).ConfigureAwait(false);
                    await vectors.WriteAsync(id, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                    await vectors.WriteAsync(embedder.ModelId, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    await vectors.WriteAsync(chunk.Vector.Length, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                    await vectors.WriteAsync(new Vector(chunk.Vector), "vector", cancellationToken).ConfigureAwait(false);
                }
                await vectors.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        private static void Add(NpgsqlBatch batch, string sql, object parameter)
        {
            var command = new NpgsqlBatchCommand(sql);
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
            batch.BatchCommands.Add(command);
        }

        /// <summary>Moves to the batch's next bigint[] result (the drawn ids) and reads it.</summary>
        private static async Task<long[]> ReadIdsAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
        {
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.FieldCount == 1 && reader.GetDataTypeName(0) == "bigint[]" && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return reader.GetFieldValue<long[]>(0);
                }
            }
            throw new InvalidOperationException("The database did not return the ids drawn for the new files and chunks.");
        }

        /// <summary>
        /// Creates the HNSW index for vectors of one size once per database (under an advisory lock), after the
        /// ingest's rows are in: building over the loaded rows is far faster than inserting into the graph row by row.
        /// </summary>
        private async Task EnsureVectorIndexAsync(int dimensions, CancellationToken cancellationToken)
        {
            string name = $"heed_embeddings_hnsw_{dimensions}";
            await using NpgsqlConnection connection = await store._dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (var exists = new NpgsqlCommand($"SELECT to_regclass('{name}') IS NOT NULL", connection))
            {
                // checked first: CREATE INDEX IF NOT EXISTS would lock the table against writers before finding the index
                if ((bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                {
                    return;
                }
            }
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                $"SELECT pg_advisory_xact_lock({VectorIndexLock}); " +
                $"CREATE INDEX IF NOT EXISTS {name} ON heed_embeddings " +
                $"USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops) WHERE dimensions = {dimensions}", connection, transaction);
            command.CommandTimeout = 0; // a build over millions of vectors takes minutes
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
