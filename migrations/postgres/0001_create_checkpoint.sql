-- PostgreSQL form of ../0001_create_checkpoint.sql. Sizes are BIGINT (SQLite's INTEGER is 64-bit, PostgreSQL's is
-- not), and text compares bytewise (COLLATE "C") as in SQLite: sort orders, cursors and ID prefixes match.
CREATE TABLE checkpoint (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    compression TEXT COLLATE "C" NOT NULL,
    engine TEXT COLLATE "C" NOT NULL,
    container_id TEXT COLLATE "C" NOT NULL,
    container_name TEXT COLLATE "C" NOT NULL,
    pod_name TEXT COLLATE "C",
    pod_namespace TEXT COLLATE "C",
    image TEXT COLLATE "C",
    runtime TEXT COLLATE "C",
    created TEXT COLLATE "C",
    checkpointed TEXT COLLATE "C",
    ip_addresses TEXT NOT NULL DEFAULT '[]',
    checkpoint_size BIGINT NOT NULL,
    memory_pages_size BIGINT NOT NULL,
    rootfs_diff_size BIGINT,
    process_count INTEGER NOT NULL,
    source_node TEXT COLLATE "C",
    labels TEXT NOT NULL DEFAULT '{}',
    uploaded_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX checkpoint_on_uploaded_at ON checkpoint(uploaded_at, id);
CREATE INDEX checkpoint_on_created ON checkpoint((coalesce(created, '')), id);
CREATE INDEX checkpoint_on_container_name ON checkpoint(container_name, id);
CREATE INDEX checkpoint_on_namespace ON checkpoint((coalesce(pod_namespace, '')), id);
CREATE INDEX checkpoint_on_pod ON checkpoint((coalesce(pod_name, '')), id);
CREATE INDEX checkpoint_on_engine ON checkpoint(engine, id);
CREATE INDEX checkpoint_on_source_node ON checkpoint((coalesce(source_node, '')), id);
CREATE INDEX checkpoint_on_image ON checkpoint((coalesce(image, '')), id);
CREATE INDEX checkpoint_on_size ON checkpoint(size, id);

CREATE TABLE checkpoint_inspection (
    checkpoint_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,
    inspection TEXT NOT NULL
);
