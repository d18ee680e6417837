internal import Foundation

/// Who drives an unfinished migration, as the catalog records it.
public struct MigrationLease: Sendable, Equatable {
    /// The replica holding the lease.
    public var holder: String
    /// Milliseconds since 1970 on the database's clock.
    public var expiresAt: Int64
    /// Milliseconds left when it was read: the expiry on any clock, as the reader's now plus this.
    public var millisecondsLeft: Int64
    /// Whether the replica that asked holds it now.
    public var granted: Bool
    /// The replica that held it before, when this request took it over from another (its lease had expired).
    public var previousHolder: String?
}

extension Catalog {
    /// Takes or renews the lease on migration `id` for `holder` for `duration` seconds, unless another replica
    /// holds an unexpired one. Runs in one write transaction (serialised across replicas), timed by the database's
    /// clock, so two replicas whose clocks disagree still never both hold it. Returns the lease as it stands.
    public func takeMigrationLease(_ id: String, holder: String, duration: Double) throws -> MigrationLease {
        try writeNodesAndMigrations { db in
            let now = try Self.databaseMilliseconds(db)
            let current = try db.row("SELECT holder, expires_at FROM migration_lease WHERE migration_id = ?", id)
            let currentHolder: String? = try current.map { try $0("holder") }
            let currentExpiry: Int64 = try current.map { try $0("expires_at") } ?? 0
            if let currentHolder, currentHolder != holder, currentExpiry > now {
                return MigrationLease(holder: currentHolder, expiresAt: currentExpiry, millisecondsLeft: currentExpiry - now, granted: false)
            }
            let expiresAt = now + Int64(duration * 1000)
            if current == nil {
                try db.execute("INSERT INTO migration_lease (migration_id, holder, expires_at) VALUES (?, ?, ?)", id, holder, expiresAt)
            } else {
                try db.execute("UPDATE migration_lease SET holder = ?, expires_at = ? WHERE migration_id = ?", holder, expiresAt, id)
            }
            return MigrationLease(holder: holder, expiresAt: expiresAt, millisecondsLeft: expiresAt - now, granted: true,
                                  previousHolder: currentHolder == holder ? nil : currentHolder)
        }
    }

    /// Drops the lease on a migration that has ended (whoever holds it: nothing drives a finished migration).
    public func releaseMigrationLease(_ id: String) throws {
        try writeNodesAndMigrations { db in
            _ = try db.execute("DELETE FROM migration_lease WHERE migration_id = ?", id)
        }
    }

    /// Drops the leases `holder` holds: a replica shutting down cleanly hands its migrations on at once.
    public func releaseMigrationLeases(heldBy holder: String) throws {
        try writeNodesAndMigrations { db in
            _ = try db.execute("DELETE FROM migration_lease WHERE holder = ?", holder)
        }
    }

    /// Drops every lease: for a catalog only this process serves (SQLite), whose earlier run's leases name a replica
    /// that is gone for certain.
    public func releaseAllMigrationLeases() throws {
        try writeNodesAndMigrations { db in
            _ = try db.execute("DELETE FROM migration_lease")
        }
    }

    /// The lease on migration `id`, if one was ever taken and not released.
    public func migrationLease(_ id: String) throws -> MigrationLease? {
        try read { db in
            let now = try Self.databaseMilliseconds(db)
            return try db.row("SELECT holder, expires_at FROM migration_lease WHERE migration_id = ?", id).map {
                let expiresAt: Int64 = try $0("expires_at")
                return MigrationLease(holder: try $0("holder"), expiresAt: expiresAt, millisecondsLeft: expiresAt - now, granted: false)
            }
        }
    }

    /// Now, in milliseconds since 1970, on the database server's clock (the one clock every replica shares); on
    /// SQLite, the one process's own.
    static func databaseMilliseconds(_ db: any SQLConnection) throws -> Int64 {
        switch db.dialect {
        case .postgres:
            let value: Int64? = try db.value("SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)")
            return value ?? Int64(Date().timeIntervalSince1970 * 1000)
        case .sqlite:
            return Int64(Date().timeIntervalSince1970 * 1000)
        }
    }
}
