-- Nodes (registered by their agents' heartbeats) and migrations (persisted state machines with an event log).
CREATE TABLE node (
    name TEXT PRIMARY KEY NOT NULL,
    agent_url TEXT NOT NULL,
    driver TEXT,
    facts TEXT NOT NULL DEFAULT '{}',           -- TargetFacts as JSON
    runtime_version TEXT,
    free_disk_bytes INTEGER,
    version TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);

CREATE TABLE migration (
    id TEXT PRIMARY KEY NOT NULL,
    request_key TEXT NOT NULL,                  -- Idempotency-Key, or a digest of the request
    explicit_key INTEGER NOT NULL DEFAULT 0,    -- 1 when the client gave an Idempotency-Key
    checkpoint_id TEXT REFERENCES checkpoint(id) ON DELETE SET NULL,
    source_node TEXT,
    source_container TEXT,
    target_node TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',         -- restore and checkpoint options as JSON
    state TEXT NOT NULL,                        -- pending, checkpointing, transferring, restoring, succeeded, failed, cancelled
    error_code TEXT,
    error_message TEXT,
    result TEXT,                                -- the driver's result as JSON (container_id, exit_status, output_tail)
    bytes_done INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    deadline_at TEXT NOT NULL
);
CREATE INDEX migration_on_state ON migration(state);
CREATE INDEX migration_on_request_key ON migration(request_key);
CREATE INDEX migration_on_created_at ON migration(created_at, id);

CREATE TABLE migration_event (
    id INTEGER PRIMARY KEY,
    migration_id TEXT NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX migration_event_on_migration_id ON migration_event(migration_id, id);
