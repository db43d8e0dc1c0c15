using Heed.Storage;
using Npgsql;

namespace Heed.Storage.Postgres;

/// <summary>
/// Creates and migrates Heed's tables, one numbered step at a time, recording the version reached in heed_schema.
/// Migrations run under an advisory lock, so that processes opening the same database at once apply each step once.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>The schema this Heed reads and writes.</summary>
    public const int CurrentVersion = 1;

    private const long MigrationLock = 0x48656564_00000001; // "Heed", 1

    private static readonly string[] Steps =
    [
        // 1: files, chunks with their full-text vector and term count, embeddings of any size, and the BM25 totals
        """
        CREATE FUNCTION heed_term_count(tsvector) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS 'SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::int FROM unnest($1)';
        CREATE FUNCTION heed_lexeme_query(text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$SELECT ('''' || replace(replace($1, '\', '\\'), '''', '''''') || '''')::tsquery$$;
        CREATE TABLE heed_files (
            id bigserial PRIMARY KEY,
            path text COLLATE "C" NOT NULL UNIQUE,
            size bigint NOT NULL,
            last_write_ticks bigint NOT NULL,
            content_hash text NOT NULL,
            title text,
            chunk_count int NOT NULL,
            chunking text NOT NULL);
        CREATE TABLE heed_chunks (
            id bigserial PRIMARY KEY,
            file_id bigint NOT NULL REFERENCES heed_files (id) ON DELETE CASCADE,
            ordinal int NOT NULL,
            start_offset bigint NOT NULL,
            end_offset bigint NOT NULL,
            text text NOT NULL,
            search tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            term_count int GENERATED ALWAYS AS (heed_term_count(to_tsvector('english', text))) STORED,
            UNIQUE (file_id, ordinal));
        CREATE INDEX heed_chunks_search ON heed_chunks USING gin (search);
        CREATE TABLE heed_embeddings (
            chunk_id bigint PRIMARY KEY REFERENCES heed_chunks (id) ON DELETE CASCADE,
            model text NOT NULL,
            dimensions int NOT NULL,
            embedding vector NOT NULL);
        CREATE TABLE heed_totals (
            only_row bool PRIMARY KEY DEFAULT true CHECK (only_row),
            chunks bigint NOT NULL,
            terms bigint NOT NULL);
        INSERT INTO heed_totals VALUES (true, 0, 0);
        """,
    ];

    /// <summary>Brings the database to <see cref="CurrentVersion"/>.</summary>
    /// <exception cref="HeedStoreException">pgvector is missing or cannot be enabled, or the schema is newer than this Heed.</exception>
    public static async Task MigrateAsync(NpgsqlConnection connection, string location, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, $"SELECT pg_advisory_lock({MigrationLock})", cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureVectorExtensionAsync(connection, location, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS heed_schema (version int NOT NULL)", cancellationToken).ConfigureAwait(false);
            int version;
            await using (var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM heed_schema", connection))
            {
                version = Convert.ToInt32(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false));
            }
            if (version > CurrentVersion)
            {
                throw new HeedStoreException(
                    $"The knowledge base at {location} has schema version {version}, made by a newer Heed; this Heed knows versions up to " +
                    $"{CurrentVersion}. Upgrade Heed (every app sharing the database must run a Heed that knows version {version}).");
            }
            for (int step = version + 1; step <= CurrentVersion; step++)
            {
                await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, Steps[step - 1], cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, $"INSERT INTO heed_schema VALUES ({step})", cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await ExecuteAsync(connection, $"SELECT pg_advisory_unlock({MigrationLock})", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task EnsureVectorExtensionAsync(NpgsqlConnection connection, string location, CancellationToken cancellationToken)
    {
        await using var available = new NpgsqlCommand(
            "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'vector'), (SELECT count(*) FROM pg_available_extensions WHERE name = 'vector')",
            connection);
        long installed, offered;
        await using (NpgsqlDataReader reader = await available.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            (installed, offered) = (reader.GetInt64(0), reader.GetInt64(1));
        }
        if (installed > 0)
        {
            return;
        }
        if (offered == 0)
        {
            throw new HeedStoreException(
                $"The PostgreSQL server of {location} does not have the pgvector extension, which Heed's knowledge base needs for vector search. " +
                "Install pgvector 0.5 or later on the server (Debian: apt-get install postgresql-15-pgvector, or build it from source; " +
                "in this repository ./build.sh setup builds it), then open the knowledge base again.");
        }
        try
        {
            await ExecuteAsync(connection, "CREATE EXTENSION IF NOT EXISTS vector", cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new HeedStoreException(
                $"The database of {location} has pgvector available but not enabled, and this user may not enable it: " +
                "ask its owner or a superuser to run CREATE EXTENSION vector; in it, then open the knowledge base again.", e);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
