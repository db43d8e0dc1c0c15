using Heed.Rag;
using Heed.Search;
using Heed.Storage;
using Heed.Storage.Postgres;
using Heed.Tests.Rag;
using Npgsql;

namespace Heed.Tests.Storage;

/// <summary>The PostgreSQL store against the embedded one on the same documents, and its errors, on a real server.</summary>
[Collection("Postgres")]
public sealed class PostgresStoreTests(PostgresCluster cluster)
{
    private static RagPipelineOptions Options(Microsoft.Extensions.AI.IEmbeddingGenerator<string, Microsoft.Extensions.AI.Embedding<float>>? embeddings = null, FakeChatClient? chat = null) => new()
    {
        Chunking = new() { MaxTokens = 48, OverlapSentences = 0 },
        StopWords = Bm25Tokenizer.EnglishStopWords,
        EmbeddingGenerator = embeddings,
        ChatClient = chat,
    };

    // The hashed-word vectors tie often (identical sentences, equal cosines), and HNSW at its default
    // ef_search missed the exact scan's nearest chunk here. The stores agree because PostgreSQL searches a
    // base this small exhaustively (ef_search above its size), computes and orders cosine distances as the
    // embedded store does, and both break every tie by path, then ordinal.
    [Fact]
    public async Task Ingest_search_and_answer_equal_the_embedded_stores()
    {
        using var folder = new TempFolder();
        TopicCorpus.Write(folder, "docs", 24);
        SampleCorpus.WriteAll(folder, "docs/sample");
        var chat = new FakeChatClient("Quorvale");
        // a hashed bag of words: deterministic, with many exact ties between different chunks
        var embeddings = new HashedWordEmbedding();
        using RagPipeline embedded = RagPipeline.CreateInMemory(Options(embeddings, chat));
        using RagPipeline postgres = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(await cluster.CreateDatabaseAsync()), Options(embeddings, chat));

        IngestResult a = await embedded.IngestAsync(folder.Combine("docs"));
        IngestResult b = await postgres.IngestAsync(folder.Combine("docs"));
        Assert.Equal(a.Summary, b.Summary);
        Assert.Equal(embedded.Files, await postgres.Store.GetFilesAsync(default));
        Assert.Equal(embedded.ChunkCount, await postgres.Store.CountChunksAsync(default));

        // a made-up place has one known answer; a topic has a few
        string[] queries = [.. Enumerable.Range(0, 24).Select(i => $"Where is {TopicCorpus.Place(i)}?"),
            "apple harvest cider", "lava crater eruption", "galaxy comet orbit", "yeast dough oven", "chlorophyll sunlight"];
        var differences = new List<string>();
        foreach (string query in queries)
        {
            IReadOnlyList<SearchHit> expected = await embedded.SearchAsync(query, 10);
            IReadOnlyList<SearchHit> actual = await postgres.SearchAsync(query, 10);
            if (!expected.Select(h => h.Chunk).SequenceEqual(actual.Select(h => h.Chunk)))
            {
                differences.Add($"{query}: embedded {Describe(expected)}, PostgreSQL {Describe(actual)}");
            }
            // Each store reports a similarity for the chunks among its own dense candidates: an exact
            // scan in one, HNSW (approximate, ties in any order) in the other, so a hit that came in
            // through BM25 may carry one in either store. Where both report one, they must agree.
            foreach ((SearchHit e, SearchHit p) in expected.Zip(actual).Where(pair => pair.First.Chunk == pair.Second.Chunk
                         && pair.First.DenseSimilarity is not null && pair.Second.DenseSimilarity is not null))
            {
                Assert.Equal(e.DenseSimilarity!.Value, p.DenseSimilarity!.Value, 5);
            }
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        for (int i = 0; i < 24; i++)
        {
            SearchHit top = (await postgres.SearchAsync($"Where is {TopicCorpus.Place(i)}?", 1))[0];
            Assert.EndsWith(TopicCorpus.FileName(i), top.SourcePath);
            Assert.Contains(TopicCorpus.Place(i) + " ", top.Chunk.Text);
        }

        RagAnswer expectedAnswer = await embedded.AskAsync("Where is Quorvale?");
        RagAnswer actualAnswer = await postgres.AskAsync("Where is Quorvale?");
        Assert.Equal(expectedAnswer.Text, actualAnswer.Text);
        Assert.Equal(expectedAnswer.CitedNumbers, actualAnswer.CitedNumbers);
        Assert.Equal(expectedAnswer.Citations.Select(c => (c.SourcePath, c.Ordinal)), actualAnswer.Citations.Select(c => (c.SourcePath, c.Ordinal)));
        Assert.NotEmpty(actualAnswer.Citations);
    }

    // Words that Heed's tokenizer and PostgreSQL's English lexemes both keep as one term each.
    private static readonly string[] KeywordWords = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor",
        "indigo", "jasper", "kelp", "lagoon", "meadow", "nectar", "opal", "prairie", "quartz", "reef", "saffron", "tundra"];

    /// <summary>Records that all say "record", each with two words of <see cref="KeywordWords"/>, one 12 to 15-token sentence each (one chunk at 16 tokens).</summary>
    private static void WriteRecords(TempFolder folder, int files, int perFile, Func<int, int, string>? extra = null)
    {
        var random = new Random(7);
        for (int f = 0; f < files; f++)
        {
            var text = new System.Text.StringBuilder();
            for (int p = 0; p < perFile; p++)
            {
                text.Append($"Every record notes {KeywordWords[random.Next(KeywordWords.Length)]} near {KeywordWords[random.Next(KeywordWords.Length)]}{extra?.Invoke(f, p)}.\n\n");
            }
            folder.Write($"docs/records-{f:D3}.txt", text.ToString());
        }
    }

    [Fact]
    public async Task Keyword_search_stops_reading_at_maxscores_bound_and_ranks_as_the_embedded_bm25()
    {
        using var folder = new TempFolder();
        WriteRecords(folder, 40, 10); // 400 chunks: "record" in all, each other word in about 40
        var options = Options() with { CandidateCount = 5, Chunking = new() { MaxTokens = 16, OverlapSentences = 0 } };
        using RagPipeline embedded = RagPipeline.CreateInMemory(options);
        using RagPipeline postgres = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(await cluster.CreateDatabaseAsync()), options);
        await embedded.IngestAsync(folder.Combine("docs"));
        await postgres.IngestAsync(folder.Combine("docs"));
        Assert.Equal(400, embedded.ChunkCount);

        // the rarer words find 5 chunks whose scores the omnipresent "record" (idf near 0) cannot beat: PostgreSQL
        // stops before reading "record"'s 400 chunks, and must still give BM25's exact top 5, ties in path order
        foreach (string query in KeywordWords.Select((w, i) => $"record {w} {KeywordWords[(i + 7) % KeywordWords.Length]}").Append("record amber"))
        {
            IReadOnlyList<SearchHit> expected = await embedded.SearchAsync(query, 5);
            IReadOnlyList<SearchHit> actual = await postgres.SearchAsync(query, 5);
            Assert.Equal(5, expected.Count);
            Assert.True(expected.Select(h => h.Chunk).SequenceEqual(actual.Select(h => h.Chunk)),
                $"{query}: embedded {Describe(expected)}, PostgreSQL {Describe(actual)}");
        }
    }

    [Fact]
    public async Task Chunks_matching_only_a_term_in_more_than_2000_chunks_are_left_out_when_a_rarer_term_is_asked()
    {
        using var folder = new TempFolder();
        WriteRecords(folder, 21, 100, (f, p) => f == 3 && p % 40 == 1 ? " and zephyr" : ""); // 2,100 chunks, "zephyr" in 3
        var options = Options() with { CandidateCount = 10, Chunking = new() { MaxTokens = 16, OverlapSentences = 0 } };
        using RagPipeline embedded = RagPipeline.CreateInMemory(options);
        using RagPipeline postgres = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(await cluster.CreateDatabaseAsync()), options);
        await embedded.IngestAsync(folder.Combine("docs"));
        await postgres.IngestAsync(folder.Combine("docs"));
        Assert.Equal(2100, embedded.ChunkCount);

        IReadOnlyList<SearchHit> expected = await embedded.SearchAsync("record zephyr", 10);
        IReadOnlyList<SearchHit> actual = await postgres.SearchAsync("record zephyr", 10);
        // the embedded store fills its list with chunks that only say "record"; PostgreSQL does not read "record"'s
        // 2,100 chunks for them, so it gives the three zephyr chunks, in the same order
        Assert.Equal(10, expected.Count);
        Assert.Equal(3, actual.Count);
        Assert.Equal(expected.Take(3).Select(h => h.Chunk), actual.Select(h => h.Chunk));
        Assert.All(actual, h => Assert.Contains("zephyr", h.Chunk.Text));
        // a query of common terms only still finds chunks
        Assert.Equal(5, (await postgres.SearchAsync("record", 5)).Count);
    }

    [Fact]
    public async Task A_synonym_only_the_embedding_knows_is_found_through_the_hnsw_index()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        using RagPipeline postgres = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(await cluster.CreateDatabaseAsync()),
            Options(new KeywordEmbeddingGenerator()));
        await postgres.IngestAsync(folder.Combine("docs"));
        SearchHit top = (await postgres.SearchAsync("automobile", 1))[0];
        Assert.EndsWith("cars.md", top.SourcePath);
        Assert.Null(top.LexicalScore);
        Assert.Equal(1.0, top.DenseSimilarity!.Value, 5);
    }

    private static string Describe(IEnumerable<SearchHit> hits) =>
        "[" + string.Join(", ", hits.Select(h => $"{Path.GetFileName(h.SourcePath)}#{h.Chunk.Ordinal} {h.LexicalScore:F3}/{h.DenseSimilarity:F3}")) + "]";

    [Fact]
    public async Task A_changed_file_replaces_its_chunks_and_a_deleted_one_leaves()
    {
        using var folder = new TempFolder();
        SampleCorpus.WriteAll(folder);
        string connection = await cluster.CreateDatabaseAsync();
        using RagPipeline rag = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(connection), Options());
        await rag.IngestAsync(folder.Combine("docs"));
        long before = await rag.Store.CountChunksAsync(default);

        folder.Write("docs/plants.txt", "Ferns grow in the shade and spread by spores.");
        File.Delete(folder.Combine("docs", "deep", "oceans.txt"));
        IngestResult result = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal([folder.Combine("docs", "plants.txt")], result.Updated);
        Assert.Equal([folder.Combine("docs", "deep", "oceans.txt")], result.Removed);

        Assert.Equal(before - result.ChunksRemoved + result.ChunksAdded, await rag.Store.CountChunksAsync(default));
        Assert.Equal(await PostgresCluster.ScalarAsync<long>(connection, "SELECT count(*) FROM heed_chunks"), await rag.Store.CountChunksAsync(default));
        await AssertTermCountsAreRecountsAsync(connection);
        Assert.Empty(await rag.SearchAsync("photosynthesis chlorophyll", 3));
        Assert.Empty(await rag.SearchAsync("tides coral", 3));
        Assert.EndsWith("plants.txt", (await rag.SearchAsync("ferns spores", 1))[0].SourcePath);

        IngestResult again = await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(3, again.Unchanged);
        Assert.Equal(0, again.ChunksAdded);
    }

    [Fact]
    public async Task A_malformed_connection_string_is_refused_before_connecting()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => PostgresKnowledgeStore.OpenAsync("Hots=localhost;Databse=x"));
        Assert.Contains("connection string is malformed", e.Message);
    }

    [Fact]
    public async Task A_server_that_does_not_answer_and_a_wrong_password_say_so()
    {
        string unused = $"Host=127.0.0.1;Port={FreePort()};Database=x;Username=heed;Password=p;Timeout=5";
        var down = await Assert.ThrowsAsync<HeedStoreException>(() => PostgresKnowledgeStore.OpenAsync(unused));
        Assert.Contains("Cannot open the knowledge base at postgresql://heed@127.0.0.1", down.Message);
        Assert.Contains("Check the host, port", down.Message);

        string database = await cluster.CreateDatabaseAsync();
        string wrong = new NpgsqlConnectionStringBuilder(database) { Password = "not-the-password" }.ConnectionString;
        var refused = await Assert.ThrowsAsync<HeedStoreException>(() => PostgresKnowledgeStore.OpenAsync(wrong));
        Assert.Contains("password authentication failed", refused.Message);
        Assert.DoesNotContain("not-the-password", refused.Message);
    }

    [Fact]
    public async Task A_database_without_pgvector_that_the_user_may_not_enable_says_what_to_do()
    {
        string database = new NpgsqlConnectionStringBuilder(await cluster.CreateDatabaseAsync()).Database!;
        await cluster.ExecuteAsync(database, "CREATE ROLE reader LOGIN PASSWORD 'reader-password'; GRANT CREATE ON SCHEMA public TO reader;");
        var e = await Assert.ThrowsAsync<HeedStoreException>(() =>
            PostgresKnowledgeStore.OpenAsync(cluster.ConnectionString(database, "reader", "reader-password")));
        Assert.Contains("pgvector available but not enabled", e.Message);
        Assert.Contains("CREATE EXTENSION vector", e.Message);
    }

    [Fact]
    public async Task A_schema_from_a_newer_heed_is_refused()
    {
        string connection = await cluster.CreateDatabaseAsync();
        (await PostgresKnowledgeStore.OpenAsync(connection)).Dispose();
        string database = new NpgsqlConnectionStringBuilder(connection).Database!;
        await cluster.ExecuteAsync(database, "INSERT INTO heed_schema VALUES (99)");
        var e = await Assert.ThrowsAsync<HeedStoreException>(() => PostgresKnowledgeStore.OpenAsync(connection));
        Assert.Contains("schema version 99, made by a newer Heed", e.Message);
    }

    [Fact]
    public async Task A_version_1_base_migrates_to_version_2_with_its_term_counts_and_keyword_search()
    {
        using var folder = new TempFolder();
        TopicCorpus.Write(folder, "docs", 12);
        string connection = await cluster.CreateDatabaseAsync();
        using (RagPipeline rag = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(connection), Options()))
        {
            await rag.IngestAsync(folder.Combine("docs"));
        }
        // back to what version 1 had: no term counts, no keyword search function
        string database = new NpgsqlConnectionStringBuilder(connection).Database!;
        await cluster.ExecuteAsync(database, "DROP TABLE heed_terms; DROP FUNCTION heed_keyword_search; DELETE FROM heed_schema WHERE version = 2;");

        using RagPipeline migrated = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(connection), Options());
        Assert.Equal(2, await PostgresCluster.ScalarAsync<int>(connection, "SELECT max(version) FROM heed_schema"));
        await AssertTermCountsAreRecountsAsync(connection);
        SearchHit top = (await migrated.SearchAsync($"Where is {TopicCorpus.Place(5)}?", 1))[0];
        Assert.EndsWith(TopicCorpus.FileName(5), top.SourcePath);
    }

    [Fact]
    public async Task Ingest_creates_the_full_text_and_hnsw_indexes()
    {
        using var folder = new TempFolder();
        TopicCorpus.Write(folder, "docs", 12);
        string connection = await cluster.CreateDatabaseAsync();
        using RagPipeline rag = RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(connection), Options(new KeywordEmbeddingGenerator()));
        await rag.IngestAsync(folder.Combine("docs"));
        Assert.Equal(1L, await PostgresCluster.ScalarAsync<long>(connection,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'heed_chunks' AND indexdef LIKE '%USING gin (search)%'"));
        Assert.Equal(1L, await PostgresCluster.ScalarAsync<long>(connection,
            $"SELECT count(*) FROM pg_indexes WHERE tablename = 'heed_embeddings' AND indexdef LIKE '%USING hnsw%vector({KeywordEmbeddingGenerator.Families.Length})%'"));
    }

    /// <summary>Every lexeme's chunk count in heed_terms equals a count made again from the chunks (a removed lexeme may stay at 0).</summary>
    private static async Task AssertTermCountsAreRecountsAsync(string connection) =>
        Assert.Equal(0L, await PostgresCluster.ScalarAsync<long>(connection,
            "SELECT count(*) FROM (SELECT u.lexeme, count(*) AS n FROM heed_chunks c CROSS JOIN LATERAL unnest(c.search) u GROUP BY u.lexeme) e " +
            "FULL JOIN heed_terms t ON t.lexeme = e.lexeme WHERE coalesce(e.n, 0) <> coalesce(t.chunks, 0)"));

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
