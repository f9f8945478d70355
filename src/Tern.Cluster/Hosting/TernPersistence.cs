// The journal's database, seen from outside Akka: checks an operator gets as one clear line
// before the node starts, instead of a persistence failure deep in a VM controller later.
using Npgsql;

namespace Tern.Cluster.Hosting;

/// <summary>Checks of the persistence database.</summary>
public static class TernPersistence
{
    /// <summary>Why <paramref name="connectionString"/> is not a usable Npgsql connection string, or null.</summary>
    public static string? CheckPostgresConnectionString(string connectionString)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            return string.IsNullOrEmpty(builder.Host) ? "the connection string names no Host" : null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            return $"not an Npgsql connection string: {e.Message}";
        }
    }

    /// <summary>
    /// Waits until the database of <paramref name="options"/> accepts a connection (PostgreSQL may
    /// still be starting beside the node), at most <paramref name="timeout"/>; SQLite needs no wait.
    /// Returns why it never did, or null.
    /// </summary>
    public static async Task<string?> WaitForDatabaseAsync(TernNodeOptions options, TimeSpan timeout, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Persistence != PersistenceKind.Postgres)
            return null;
        var builder = new NpgsqlConnectionStringBuilder(options.EffectiveJournalConnectionString);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(cancel);
                return null;
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                if (DateTime.UtcNow >= deadline || e is PostgresException { SqlState: "28P01" or "3D000" or "28000" })
                    return $"cannot use PostgreSQL at {builder.Host}:{builder.Port}/{builder.Database}: {e.Message}";
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancel);
        }
    }
}
