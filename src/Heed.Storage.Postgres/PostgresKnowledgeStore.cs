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
/// pgvector HNSW index, cosine distance), both fused by reciprocal rank in one round trip. Ingest commits each file
/// in its own transaction (its chunks and embeddings all visible or none); writers of the same file take turns under
/// an advisory lock, so processes ingesting at once lose and duplicate nothing.
/// </summary>
public sealed class PostgresKnowledgeStore : IKnowledgeStore
{
    private const long VectorIndexLock = 0x48656564_00000002; // "Heed", 2

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
            // HNSW returns ef_search candidates; let it scan on when the model filter drops some
            var settings = new NpgsqlBatchCommand("SELECT set_config('hnsw.ef_search', $1, false), set_config('hnsw.iterative_scan', 'relaxed_order', false)");
            settings.Parameters.Add(new NpgsqlParameter { Value = Math.Clamp(count * 2, 40, 1000).ToString(System.Globalization.CultureInfo.InvariantCulture) });
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
    /// Keyword candidates ranked by BM25 with Heed's in-process constants, k1 = 1.2 and b = 0.75 (IDF from the GIN index's per-term counts, lengths from the stored term
    /// counts) and, with a vector of <paramref name="dimensions"/>, the nearest embeddings from the HNSW index of that
    /// size, fused by reciprocal rank (k = 60; ties by chunk id, i.e. ingest order).
    /// Parameters: $1 query text, $2 count, $3 query vector, $4 embedding model.
    /// </summary>
    private static string SearchSql(int? dimensions)
    {
        var sql = new StringBuilder($"""
            WITH terms AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', $1))),
            query AS (SELECT string_agg('(' || heed_lexeme_query(lexeme)::text || ')', ' | ')::tsquery AS q FROM terms),
            totals AS (SELECT greatest(chunks, 1) AS n, greatest(terms, 1)::float8 / greatest(chunks, 1) AS average_length FROM heed_totals),
            idf AS (
                SELECT t.lexeme, ln(1 + (totals.n - df.n + 0.5) / (df.n + 0.5)) AS idf
                FROM terms t CROSS JOIN totals
                CROSS JOIN LATERAL (SELECT count(*) AS n FROM heed_chunks c WHERE c.search @@ heed_lexeme_query(t.lexeme)) df),
            lexical AS (
                SELECT c.id, sum(idf.idf * (m.tf * 2.2) / (m.tf + 1.2 * (0.25 + 0.75 * c.term_count / totals.average_length))) AS score
                FROM query, totals, heed_chunks c
                CROSS JOIN LATERAL (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf FROM unnest(c.search) u) m
                JOIN idf ON idf.lexeme = m.lexeme
                WHERE query.q IS NOT NULL AND c.search @@ query.q
                GROUP BY c.id
                ORDER BY score DESC, c.id
                LIMIT $2),
            lexical_ranked AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM lexical)
            """);
        if (dimensions is int d)
        {
            sql.Append($"""
                ,
                dense AS (
                    SELECT e.chunk_id AS id, e.embedding::vector({d}) <=> $3 AS distance
                    FROM heed_embeddings e
                    WHERE e.dimensions = {d} AND e.model = $4
                    ORDER BY e.embedding::vector({d}) <=> $3
                    LIMIT $2),
                dense_ranked AS (
                    SELECT id, 1 - distance AS similarity, row_number() OVER (ORDER BY distance, id) AS rank
                    FROM dense WHERE distance <> 'NaN'::float8), -- a zero vector has no direction: no similarity
                found AS (
                    SELECT coalesce(l.id, d.id) AS id,
                           coalesce(1.0 / (60 + l.rank), 0) + coalesce(1.0 / (60 + d.rank), 0) AS score, l.score AS lexical, d.similarity
                    FROM lexical_ranked l FULL JOIN dense_ranked d ON l.id = d.id)
                """);
        }
        else
        {
            sql.Append(",\nfound AS (SELECT id, score, score AS lexical, NULL::float8 AS similarity FROM lexical_ranked)");
        }
        sql.Append("""

            SELECT f.id, f.score::float8, f.lexical::float8, f.similarity::float8, fi.path, c.ordinal, c.start_offset, c.end_offset, c.text
            FROM found f JOIN heed_chunks c ON c.id = f.id JOIN heed_files fi ON fi.id = c.file_id
            ORDER BY f.score DESC, f.id
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

    /// <summary>Commits each file as it comes; the commit only reports the totals.</summary>
    private sealed class Writer(PostgresKnowledgeStore store, ChunkEmbedder? embedder) : IKnowledgeStoreWriter
    {
        private readonly HashSet<int> _vectorIndexes = [];

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
                    await EnsureVectorIndexAsync(embedded[0].Vector!.Length, cancellationToken).ConfigureAwait(false);
                }
            }
            await using NpgsqlConnection connection = await store._dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlBatch batch = new(connection, transaction);
            AddRemoval(batch, file.Path);
            var insertFile = new NpgsqlBatchCommand(
                "INSERT INTO heed_files (path, size, last_write_ticks, content_hash, title, chunk_count, chunking) VALUES ($1, $2, $3, $4, $5, $6, $7)");
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.Path });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.Size });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.LastWriteTimeUtc.Ticks });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.ContentHash });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = (object?)file.Title ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.ChunkCount });
            insertFile.Parameters.Add(new NpgsqlParameter { Value = file.Chunking });
            batch.BatchCommands.Add(insertFile);
            var insertChunks = new NpgsqlBatchCommand(
                "INSERT INTO heed_chunks (file_id, ordinal, start_offset, end_offset, text) " +
                "SELECT (SELECT id FROM heed_files WHERE path = $1), * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::text[])");
            insertChunks.Parameters.Add(new NpgsqlParameter { Value = file.Path });
            insertChunks.Parameters.Add(new NpgsqlParameter { Value = chunks.Select(c => c.Ordinal).ToArray() });
            insertChunks.Parameters.Add(new NpgsqlParameter { Value = chunks.Select(c => c.StartOffset).ToArray() });
            insertChunks.Parameters.Add(new NpgsqlParameter { Value = chunks.Select(c => c.EndOffset).ToArray() });
            insertChunks.Parameters.Add(new NpgsqlParameter { Value = chunks.Select(c => c.Text).ToArray() });
            batch.BatchCommands.Add(insertChunks);
            foreach (IndexedChunk chunk in embedded.Where(c => c.Vector is not null))
            {
                var insertEmbedding = new NpgsqlBatchCommand(
                    "INSERT INTO heed_embeddings (chunk_id, model, dimensions, embedding) " +
                    "SELECT c.id, $3, $4, $5 FROM heed_chunks c JOIN heed_files f ON f.id = c.file_id WHERE f.path = $1 AND c.ordinal = $2");
                insertEmbedding.Parameters.Add(new NpgsqlParameter { Value = file.Path });
                insertEmbedding.Parameters.Add(new NpgsqlParameter { Value = chunk.Chunk.Ordinal });
                insertEmbedding.Parameters.Add(new NpgsqlParameter { Value = embedder!.ModelId });
                insertEmbedding.Parameters.Add(new NpgsqlParameter { Value = chunk.Vector!.Length });
                insertEmbedding.Parameters.Add(new NpgsqlParameter { Value = new Vector(chunk.Vector) });
                batch.BatchCommands.Add(insertEmbedding);
            }
            var totals = new NpgsqlBatchCommand(
                "UPDATE heed_totals SET chunks = chunks + s.chunk_count, terms = terms + s.term_count " +
                "FROM (SELECT count(*) AS chunk_count, coalesce(sum(c.term_count), 0) AS term_count FROM heed_chunks c JOIN heed_files f ON f.id = c.file_id WHERE f.path = $1) s");
            totals.Parameters.Add(new NpgsqlParameter { Value = file.Path });
            batch.BatchCommands.Add(totals);
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
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
            await using NpgsqlConnection connection = await store._dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlBatch batch = new(connection, transaction);
            AddRemoval(batch, path);
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task<(int Files, long Chunks)> CommitAsync(CancellationToken cancellationToken)
        {
            await using NpgsqlCommand command = store._dataSource.CreateCommand("SELECT (SELECT count(*) FROM heed_files), chunks FROM heed_totals");
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (checked((int)reader.GetInt64(0)), reader.GetInt64(1));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        /// <summary>
        /// Takes the file's advisory lock (held to the end of the transaction: writers of one file take turns), then
        /// deletes the file, its chunks and embeddings, and takes them off the BM25 totals.
        /// </summary>
        private static void AddRemoval(NpgsqlBatch batch, string path)
        {
            var lockPath = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");
            lockPath.Parameters.Add(new NpgsqlParameter { Value = path });
            batch.BatchCommands.Add(lockPath);
            var totals = new NpgsqlBatchCommand(
                "UPDATE heed_totals SET chunks = chunks - s.chunk_count, terms = terms - s.term_count " +
                "FROM (SELECT count(*) AS chunk_count, coalesce(sum(c.term_count), 0) AS term_count FROM heed_chunks c JOIN heed_files f ON f.id = c.file_id WHERE f.path = $1) s");
            totals.Parameters.Add(new NpgsqlParameter { Value = path });
            batch.BatchCommands.Add(totals);
            var delete = new NpgsqlBatchCommand("DELETE FROM heed_files WHERE path = $1");
            delete.Parameters.Add(new NpgsqlParameter { Value = path });
            batch.BatchCommands.Add(delete);
        }

        /// <summary>Creates the HNSW index for vectors of one size, once per database (under an advisory lock), outside any file's transaction.</summary>
        private async Task EnsureVectorIndexAsync(int dimensions, CancellationToken cancellationToken)
        {
            if (!_vectorIndexes.Add(dimensions))
            {
                return;
            }
            await using NpgsqlConnection connection = await store._dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                $"SELECT pg_advisory_xact_lock({VectorIndexLock}); " +
                $"CREATE INDEX IF NOT EXISTS heed_embeddings_hnsw_{dimensions} ON heed_embeddings " +
                $"USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops) WHERE dimensions = {dimensions}", connection, transaction);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
