-- Retention: pins that keep a checkpoint from every policy, and the record of every deletion (by whom or which
-- policy, when, why). A deletion row outlives its checkpoint: it names what was deleted, not a live row.
CREATE TABLE checkpoint_pin (
    checkpoint_id TEXT PRIMARY KEY NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    pinned_by TEXT NOT NULL,
    pinned_at TEXT NOT NULL
);

CREATE TABLE checkpoint_deletion (
    id INTEGER PRIMARY KEY,
    checkpoint_id TEXT NOT NULL,
    container_name TEXT NOT NULL,
    pod_name TEXT,
    pod_namespace TEXT,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    deleted_by TEXT NOT NULL,                   -- a token's name, or "policy:<scope>" for retention
    reason TEXT NOT NULL
);
CREATE INDEX checkpoint_deletion_on_deleted_at ON checkpoint_deletion(deleted_at, id);
CREATE INDEX checkpoint_deletion_on_checkpoint_id ON checkpoint_deletion(checkpoint_id);
