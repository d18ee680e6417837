-- Rollback and phase timings: a migration that stopped its source container and then failed restores it there.
ALTER TABLE migration ADD COLUMN source_stopped INTEGER NOT NULL DEFAULT 0;  -- 1 once the source was checkpointed without --leave-running
ALTER TABLE migration ADD COLUMN rolled_back INTEGER;                        -- after a failure: 1 runs on the source again, 0 could not
ALTER TABLE migration ADD COLUMN phases TEXT NOT NULL DEFAULT '[]';          -- [MigrationPhase] as JSON
ALTER TABLE migration ADD COLUMN findings TEXT;                              -- [BlockingFinding] that stopped it, as JSON
