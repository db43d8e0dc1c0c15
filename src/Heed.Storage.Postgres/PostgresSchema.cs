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
    public const int CurrentVersion = 2;

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
        // 2: per-term chunk counts (BM25's n(t) without counting the GIN index's postings on every query), and
        // keyword search that scores only the chunks it must
        """
        CREATE TABLE heed_terms (
            lexeme text COLLATE "C" PRIMARY KEY,
            chunks bigint NOT NULL);
        INSERT INTO heed_terms SELECT u.lexeme, count(*) FROM heed_chunks c CROSS JOIN LATERAL unnest(c.search) u GROUP BY u.lexeme;
        CREATE FUNCTION heed_keyword_search(query text, k int, common_chunks bigint)
            RETURNS TABLE (chunk_id bigint, score float8, rank bigint) LANGUAGE plpgsql STABLE ROWS 20 AS $fn$
        -- ROWS 20: the planner's default guess, 1000, made it hash-join the whole chunk table with the candidates
        -- BM25 with Heed's constants (k1 = 1.2, b = 0.75), best k first, ties by path then ordinal (the embedded
        -- store's order). MaxScore (Turtle and Flood, 1995): terms are searched through the GIN index rarest first; a
        -- chunk holding none of the searched terms scores less than the sum of idf·(k1 + 1) over the others, so once
        -- the k-th best candidate reaches that sum the top k is exact and the common terms' chunks are never read.
        -- A term in more than common_chunks chunks is not searched on its own: chunks whose only match is such a
        -- term are left out when a rarer term is in the query (they are the tail of the ranking, and reading them
        -- would cost a scan of most of the base).
        DECLARE
            n float8;
            average_length float8;
            lexemes text[];
            idfs float8[];
            frequencies bigint[];
            searched int := 0;
            rest float8;
            ids bigint[];
            scores float8[];
        BEGIN
            SELECT greatest(t.chunks, 1), greatest(t.terms, 1)::float8 / greatest(t.chunks, 1) INTO n, average_length FROM heed_totals t;
            SELECT array_agg(q.lexeme ORDER BY q.df, q.lexeme), array_agg(ln(1 + (n - q.df + 0.5) / (q.df + 0.5)) ORDER BY q.df, q.lexeme),
                   array_agg(q.df ORDER BY q.df, q.lexeme)
              INTO lexemes, idfs, frequencies
              FROM (SELECT DISTINCT u.lexeme, h.chunks AS df FROM unnest(to_tsvector('english', query)) u
                    JOIN heed_terms h ON h.lexeme = u.lexeme WHERE h.chunks > 0) q;
            IF lexemes IS NULL THEN
                RETURN;
            END IF;
            LOOP
                searched := searched + 1;
                SELECT array_agg(top.id ORDER BY top.score DESC, top.path, top.ordinal), array_agg(top.score ORDER BY top.score DESC, top.path, top.ordinal)
                  INTO ids, scores
                  FROM (SELECT c.id, s.score, f.path, c.ordinal
                        FROM heed_chunks c
                        JOIN heed_files f ON f.id = c.file_id
                        CROSS JOIN LATERAL (
                            SELECT sum(q.idf * (m.tf * 2.2) / (m.tf + 1.2 * (0.25 + 0.75 * c.term_count / average_length)) ORDER BY m.lexeme) AS score
                            FROM (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf FROM unnest(c.search) u) m
                            JOIN unnest(lexemes, idfs) q (lexeme, idf) ON q.lexeme = m.lexeme) s
                        WHERE c.search @@ (SELECT string_agg('(' || heed_lexeme_query(l)::text || ')', ' | ')::tsquery FROM unnest(lexemes[1:searched]) l)
                        ORDER BY s.score DESC, f.path, c.ordinal
                        LIMIT k) top;
                EXIT WHEN searched = array_length(lexemes, 1);
                rest := (SELECT sum(i * 2.2) FROM unnest(idfs[searched + 1:]) i);
                EXIT WHEN coalesce(array_length(ids, 1), 0) = k AND scores[k] >= rest;
                EXIT WHEN frequencies[searched + 1] > common_chunks;
            END LOOP;
            RETURN QUERY SELECT t.id, t.score, t.rank FROM unnest(ids, scores) WITH ORDINALITY t (id, score, rank);
        END
        $fn$;
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
