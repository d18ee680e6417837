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
    uploaded_at TEXT NOT NULL,                  -- RFC 3339 UTC, when the upload completed
    inspection TEXT NOT NULL                    -- the full inspection (ferry inspect --all --format json object)
);
CREATE INDEX checkpoint_on_uploaded_at ON checkpoint(uploaded_at, id);
CREATE INDEX checkpoint_on_container_name ON checkpoint(container_name);
CREATE INDEX checkpoint_on_pod ON checkpoint(pod_namespace, pod_name);
CREATE INDEX checkpoint_on_engine ON checkpoint(engine);
CREATE INDEX checkpoint_on_source_node ON checkpoint(source_node);
