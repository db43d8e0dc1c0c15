using Heed.Hosting;
using Microsoft.Extensions.Logging;

namespace Heed.Storage.Postgres;

/// <summary>Chooses PostgreSQL for the knowledge base in <c>AddHeed</c>.</summary>
public static class HeedOptionsPostgresExtensions
{
    /// <summary>
    /// Keeps the knowledge base in PostgreSQL with pgvector: <c>services.AddHeed(o => o.UsePostgres(connectionString))</c>.
    /// The database is opened (and its tables created or migrated) on first use of the knowledge base.
    /// </summary>
    /// <param name="options">Heed's options.</param>
    /// <param name="connectionString">An Npgsql connection string; the password may instead come from ~/.pgpass.</param>
    /// <returns><paramref name="options"/>, for chaining.</returns>
    public static HeedOptions UsePostgres(this HeedOptions options, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        options.KnowledgeStore = async (loggers, cancellationToken) =>
            await PostgresKnowledgeStore.OpenAsync(connectionString, loggers.CreateLogger<PostgresKnowledgeStore>(), cancellationToken).ConfigureAwait(false);
        return options;
    }
}
