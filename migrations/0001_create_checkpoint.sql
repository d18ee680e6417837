-- The catalog of checkpoint archives. One row per distinct archive (by SHA-256 of its bytes); the row exists only
-- once the archive's blob is durable in the blob store.
CREATE TABLE checkpoint (
    id TEXT PRIMARY KEY NOT NULL,               -- SHA-256 of the archive bytes, 64 lowercase hex digits
    size INTEGER NOT NULL,                      -- stored bytes (compressed size when compressed)
    compression TEXT NOT NULL,                  -- none, gzip, zstd, xz, bzip2
    engine TEXT NOT NULL,                       -- Podman, CRI-O, containerd
    container_id TEXT NOT NULL,
    container_name TEXT NOT NULL,
    pod_name TEXT,
    pod_namespace TEXT,
    image TEXT,
    runtime TEXT,
    created TEXT,                               -- container creation time as the engine recorded it
    checkpointed TEXT,                          -- checkpoint time, when the engine records one
    ip_addresses TEXT NOT NULL DEFAULT '[]',    -- JSON array of addresses without prefix
    checkpoint_size INTEGER NOT NULL,           -- sum of the files under checkpoint/
    memory_pages_size INTEGER NOT NULL,
    rootfs_diff_size INTEGER,
    process_count INTEGER NOT NULL,
    source_node TEXT,
    labels TEXT NOT NULL DEFAULT '{}',          -- JSON object of string labels
    uploaded_at TEXT NOT NULL                   -- RFC 3339 UTC, when the upload completed
);
-- One index per sort key of the list (keyset pagination on (key, id)); the expressions match the queries'.
CREATE INDEX checkpoint_on_uploaded_at ON checkpoint(uploaded_at, id);
CREATE INDEX checkpoint_on_created ON checkpoint(coalesce(created, ''), id);
CREATE INDEX checkpoint_on_container_name ON checkpoint(container_name, id);
CREATE INDEX checkpoint_on_namespace ON checkpoint(coalesce(pod_namespace, ''), id);
CREATE INDEX checkpoint_on_pod ON checkpoint(coalesce(pod_name, ''), id);
CREATE INDEX checkpoint_on_engine ON checkpoint(engine, id);
CREATE INDEX checkpoint_on_source_node ON checkpoint(coalesce(source_node, ''), id);
CREATE INDEX checkpoint_on_image ON checkpoint(coalesce(image, ''), id);
CREATE INDEX checkpoint_on_size ON checkpoint(size, id);

-- The full inspection (what `ferry inspect --all --format json` prints), kilobytes of JSON per checkpoint, kept
-- out of the checkpoint rows so that lists never read it.
CREATE TABLE checkpoint_inspection (
    checkpoint_id TEXT PRIMARY KEY NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,
    inspection TEXT NOT NULL
);
