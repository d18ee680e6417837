-- Which service replica drives each unfinished migration (its ticks: deadlines, liveness, following and re-posting
-- jobs), until when. A replica that stops renewing its lease loses it when it expires, and another takes over.
CREATE TABLE migration_lease (
    migration_id TEXT PRIMARY KEY NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,                       -- the replica: host-pid-random
    expires_at INTEGER NOT NULL                 -- milliseconds since 1970, on the database's clock
);
