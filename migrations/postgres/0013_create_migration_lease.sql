-- PostgreSQL form of ../0013_create_migration_lease.sql: a BIGINT expiry.
CREATE TABLE migration_lease (
    migration_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
