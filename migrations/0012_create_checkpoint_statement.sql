-- Provenance: the signed statement of every catalogued checkpoint (a DSSE envelope, as JSON), in its container's
-- hash chain. Append-only: a statement outlives its checkpoint (no foreign key), so a deletion leaves the chain whole.
CREATE TABLE checkpoint_statement (
    id INTEGER PRIMARY KEY,
    checkpoint_id TEXT NOT NULL,
    chain_key TEXT NOT NULL,                    -- NAMESPACE/POD/CONTAINER
    chain_index INTEGER NOT NULL,
    statement_digest TEXT NOT NULL,             -- sha256: of the payload; the next statement names it
    envelope TEXT NOT NULL,
    UNIQUE (chain_key, chain_index)
);
CREATE INDEX checkpoint_statement_on_checkpoint_id ON checkpoint_statement(checkpoint_id, id);
