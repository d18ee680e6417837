-- What the start-up check of the blob store found wrong with a row (today only: its blob is missing).
CREATE TABLE checkpoint_problem (
    checkpoint_id TEXT PRIMARY KEY NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,
    problem TEXT NOT NULL,                      -- blob_missing
    found_at TEXT NOT NULL
);
