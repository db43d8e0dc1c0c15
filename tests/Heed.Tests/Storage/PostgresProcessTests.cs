using System.Diagnostics;
using System.Text.RegularExpressions;
using Heed.Rag;
using Heed.Tests.Rag;
using Heed.Text;
using Npgsql;

namespace Heed.Tests.Storage;

/// <summary>Several `heed rag` processes on one PostgreSQL knowledge base: at once, and killed mid-ingest.</summary>
[Collection("Postgres")]
public sealed partial class PostgresProcessTests(PostgresCluster cluster)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Four_processes_ingest_and_query_one_base_at_once_losing_and_duplicating_nothing()
    {
        using var folder = new TempFolder();
        TopicCorpus.Write(folder, "docs/shared", 20);
        for (int p = 0; p < 4; p++)
        {
            for (int i = 0; i < 8; i++)
            {
                folder.Write($"docs/own-{p}/file-{i}.txt", TopicCorpus.Text(100 + 8 * p + i, 5));
            }
        }
        string connection = await cluster.CreateDatabaseAsync();

        // each process: the shared folder (all four write the same files), its own folder, then a search
        (int ExitCode, string Output, string Error)[][] runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(async p => new[]
        {
            await HeedCli.RunAsync(Timeout, "rag", "ingest", folder.Combine("docs", "shared"), "--postgres", connection),
            await HeedCli.RunAsync(Timeout, "rag", "ingest", folder.Combine("docs", $"own-{p}"), "--postgres", connection),
            await HeedCli.RunAsync(Timeout, "rag", "search", $"Where is {TopicCorpus.Place(100 + 8 * p)}?", "--top", "1", "--postgres", connection),
        }));
        foreach ((int exitCode, string output, string error) in runs.SelectMany(r => r))
        {
            Assert.True(exitCode == 0, $"exit {exitCode}: {error}{output}");
        }
        for (int p = 0; p < 4; p++)
        {
            Assert.Contains($"file-0.txt", runs[p][2].Output);
        }

        await AssertHoldsWholeFilesAsync(connection, await ReferenceChunksAsync(folder.Combine("docs")), allOfThem: true);
    }

    [Fact]
    public async Task Killing_an_ingest_mid_file_loses_no_committed_file_and_leaves_no_half_file()
    {
        const int files = 60;
        using var folder = new TempFolder();
        for (int i = 0; i < files / 2; i++)
        {
            folder.Write($"docs/file-{i:D3}.txt", TopicCorpus.Text(i, 4));
        }
        string connection = await cluster.CreateDatabaseAsync();
        (int exitCode, string output, string error) = await HeedCli.RunAsync(Timeout, "rag", "ingest", folder.Combine("docs"), "--postgres", connection);
        Assert.True(exitCode == 0, error + output);
        for (int i = files / 2; i < files; i++)
        {
            folder.Write($"docs/file-{i:D3}.txt", TopicCorpus.Text(i, 4));
        }

        // hold the BM25 totals row: the next ingest blocks inside its first new file's transaction, chunks written, not committed
        await using (var blocker = new NpgsqlConnection(connection))
        {
            await blocker.OpenAsync();
            await using NpgsqlTransaction hold = await blocker.BeginTransactionAsync();
            await using (var lockTotals = new NpgsqlCommand("SELECT * FROM heed_totals FOR UPDATE", blocker, hold))
            {
                await lockTotals.ExecuteNonQueryAsync();
            }
            using Process ingest = HeedCli.Start("rag", "ingest", folder.Combine("docs"), "--postgres", connection);
            using var cts = new CancellationTokenSource(Timeout);
            while (await PostgresCluster.ScalarAsync<long>(connection,
                       "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 0)
            {
                if (ingest.HasExited)
                {
                    Assert.Fail($"the ingest ended ({ingest.ExitCode}) before it blocked: {await ingest.StandardError.ReadToEndAsync()}");
                }
                await Task.Delay(20, cts.Token);
            }
            ingest.Kill(); // SIGKILL: no cleanup runs in the client
            await ingest.WaitForExitAsync(cts.Token);
            await hold.RollbackAsync();
        }
        // the killed client's transaction never commits: the server rolls it back when it finds the client gone

        Dictionary<string, List<TextChunk>> reference = await ReferenceChunksAsync(folder.Combine("docs"));
        await AssertHoldsWholeFilesAsync(connection, reference, allOfThem: false);
        Assert.Equal(files / 2, await CountFilesAsync(connection));

        // ingest again: every committed file is found unchanged, the rest added
        (exitCode, output, error) = await HeedCli.RunAsync(Timeout, "rag", "ingest", folder.Combine("docs"), "--postgres", connection);
        Assert.True(exitCode == 0, error + output);
        Match summary = Summary().Match(output);
        Assert.True(summary.Success, output);
        Assert.Equal(files / 2, int.Parse(summary.Groups["added"].Value));
        Assert.Equal(files / 2, int.Parse(summary.Groups["unchanged"].Value));
        await AssertHoldsWholeFilesAsync(connection, reference, allOfThem: true);
    }

    [GeneratedRegex(@"(?<added>\d+) added, 0 updated, 0 removed, (?<unchanged>\d+) unchanged")]
    private static partial Regex Summary();

    /// <summary>The chunks the embedded store makes of the same files with the CLI's chunking, by file.</summary>
    private static async Task<Dictionary<string, List<TextChunk>>> ReferenceChunksAsync(string root)
    {
        using RagPipeline reference = RagPipeline.CreateInMemory(new RagPipelineOptions { Chunking = new ChunkingOptions { MaxTokens = 256, OverlapSentences = 1 } });
        await reference.IngestAsync(root);
        return reference.Chunks.GroupBy(c => c.SourcePath).ToDictionary(g => g.Key, g => g.ToList());
    }

    private static Task<long> CountFilesAsync(string connection) => PostgresCluster.ScalarAsync<long>(connection, "SELECT count(*) FROM heed_files");

    /// <summary>
    /// Every file the database holds is one of <paramref name="reference"/>'s, with exactly its chunks, each once, and
    /// the BM25 totals and term counts agree; with <paramref name="allOfThem"/>, it holds every reference file.
    /// </summary>
    private static async Task AssertHoldsWholeFilesAsync(string connection, Dictionary<string, List<TextChunk>> reference, bool allOfThem)
    {
        var actual = new Dictionary<string, List<TextChunk>>();
        var declared = new Dictionary<string, int>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT f.path, f.chunk_count, c.ordinal, c.start_offset, c.end_offset, c.text FROM heed_files f " +
                "LEFT JOIN heed_chunks c ON c.file_id = f.id ORDER BY f.path, c.ordinal", db);
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                string path = reader.GetString(0);
                declared[path] = reader.GetInt32(1);
                List<TextChunk> chunks = actual.TryGetValue(path, out List<TextChunk>? list) ? list : actual[path] = [];
                if (!reader.IsDBNull(2))
                {
                    chunks.Add(new TextChunk(path, reader.GetInt32(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5)));
                }
            }
        }
        if (allOfThem)
        {
            Assert.Equal(reference.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        }
        foreach ((string path, List<TextChunk> chunks) in actual)
        {
            Assert.True(reference.ContainsKey(path), $"{path} is not one of the ingested files");
            Assert.Equal(reference[path], chunks);
            Assert.Equal(declared[path], chunks.Count);
        }
        long totals = await PostgresCluster.ScalarAsync<long>(connection, "SELECT chunks FROM heed_totals");
        Assert.Equal(actual.Values.Sum(c => c.Count), totals);
        // and each lexeme's chunk count (BM25's n(t)), kept by every writer, equals a count made again from the chunks
        Assert.Equal(0L, await PostgresCluster.ScalarAsync<long>(connection,
            "SELECT count(*) FROM (SELECT u.lexeme, count(*) AS n FROM heed_chunks c CROSS JOIN LATERAL unnest(c.search) u GROUP BY u.lexeme) e " +
            "FULL JOIN heed_terms t ON t.lexeme = e.lexeme WHERE coalesce(e.n, 0) <> coalesce(t.chunks, 0)"));
    }
}
