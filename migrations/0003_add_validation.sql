-- Validation: the findings of the archive rules for each checkpoint, its overall state, and the facts that target
-- preflight compares with a node. Rows catalogued before validation existed keep the state 'unknown'.
ALTER TABLE checkpoint ADD COLUMN validation_state TEXT NOT NULL DEFAULT 'unknown';  -- clean, warnings, errors, unknown
ALTER TABLE checkpoint ADD COLUMN facts TEXT;                                         -- CheckpointFacts as JSON
CREATE INDEX checkpoint_on_validation_state ON checkpoint(validation_state);

CREATE TABLE finding (
    id INTEGER PRIMARY KEY,
    checkpoint_id TEXT NOT NULL REFERENCES checkpoint(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    severity TEXT NOT NULL,                     -- error, warning, info
    path TEXT,                                  -- the archive path the finding concerns
    message TEXT NOT NULL,
    waiver TEXT                                 -- the restore option that waives it
);
CREATE INDEX finding_on_checkpoint_id ON finding(checkpoint_id);
