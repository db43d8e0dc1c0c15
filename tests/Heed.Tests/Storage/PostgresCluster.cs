using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Heed.Tests.Storage;

/// <summary>
/// A throwaway PostgreSQL 15 cluster with pgvector for the tests: initdb into a temporary folder, a free loopback
/// port, run as an unprivileged user (the "postgres" system user when the tests run as root), stopped and deleted
/// afterwards. TCP logins need the password (scram-sha-256), so that a wrong one is refused as in production.
/// Each test takes a database of its own. A machine without PostgreSQL or pgvector fails the tests, saying how to set them up.
/// </summary>
public sealed class PostgresCluster : IAsyncLifetime
{
    public const string Password = "heed-test-password";
    private const string SetupHint = "Run ./build.sh setup (as root): it installs postgresql-15 and postgresql-server-dev-15 and builds pgvector " +
                                     "from ../shared/vendor/pgvector-0.8.6.tar.gz. HEED_PG_BIN may point at another PostgreSQL bin folder.";

    private readonly string _folder = Directory.CreateTempSubdirectory("heed-pg-").FullName;
    private string _bin = "";
    private int _databases;

    public int Port { get; private set; }

    /// <summary>A superuser connection string to the "postgres" database, over TCP with the password.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    public string ConnectionString(string database, string user = "heed", string password = Password) =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username={user};Password={password};Pooling=true;Timeout=30;Command Timeout=120";

    public async Task InitializeAsync()
    {
        _bin = Environment.GetEnvironmentVariable("HEED_PG_BIN") ?? "/usr/lib/postgresql/15/bin";
        if (!File.Exists(Path.Combine(_bin, "initdb")) || !File.Exists(Path.Combine(_bin, "pg_ctl")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed (no initdb or pg_ctl in {_bin}). {SetupHint}");
        }
        string share = (await RunAsync(Path.Combine(_bin, "pg_config"), ["--sharedir"], asServerUser: false)).Trim();
        if (!File.Exists(Path.Combine(share, "extension", "vector.control")))
        {
            throw new InvalidOperationException($"pgvector is not installed ({share}/extension/vector.control is missing). {SetupHint}");
        }
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The PostgreSQL tests start a cluster with the Linux packages' tools.");
        }
        // the server user must be able to write the folder: it is deleted with everything in it afterwards
        File.SetUnixFileMode(_folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead |
            UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        string passwordFile = Path.Combine(_folder, "password");
        await File.WriteAllTextAsync(passwordFile, Password);
        string data = Path.Combine(_folder, "data");
        await RunAsync(Path.Combine(_bin, "initdb"), ["-D", data, "-U", "heed", "-E", "UTF8", "--locale=C", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--pwfile", passwordFile], asServerUser: true);
        Port = FreePort();
        await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(_folder, "server.log"), "-w", "-t", "120", "-o",
            $"-p {Port} -k {_folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off", "start"],
            asServerUser: true);
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_folder, "data"), "-m", "immediate", "-w", "stop"], asServerUser: true);
        }
        finally
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>A new, empty database (no pgvector enabled yet); returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        string name = $"heed_test_{Interlocked.Increment(ref _databases)}";
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>Runs SQL as the superuser in a database.</summary>
    public async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs a scalar query as the superuser in the database of a connection string.</summary>
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a program (as the postgres system user when we are root: PostgreSQL refuses to run as root).</summary>
    private static async Task<string> RunAsync(string program, string[] arguments, bool asServerUser)
    {
        bool switchUser = asServerUser && Environment.UserName == "root";
        var start = new ProcessStartInfo(switchUser ? "runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (switchUser)
        {
            foreach (string a in new[] { "-u", "postgres", "--", program })
            {
                start.ArgumentList.Add(a);
            }
        }
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await error}{await output}");
        }
        return await output;
    }
}

[CollectionDefinition("Postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresCluster>;
