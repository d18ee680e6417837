-- Every documented filter answered from an index (the list's speed no longer depends on the catalog's size).
--
-- q: a trigram full-text index over search_text (SQLite FTS5, external content: the text stays in checkpoint),
-- so a substring of three characters or more is found without reading every row. Shorter words fall back to a
-- scan of search_text.
CREATE VIRTUAL TABLE checkpoint_search USING fts5(search_text, content='checkpoint', content_rowid='rowid', tokenize='trigram');
INSERT INTO checkpoint_search(checkpoint_search) VALUES ('rebuild');
CREATE TRIGGER checkpoint_search_insert AFTER INSERT ON checkpoint BEGIN
    INSERT INTO checkpoint_search(rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER checkpoint_search_delete AFTER DELETE ON checkpoint BEGIN
    INSERT INTO checkpoint_search(checkpoint_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
END;
CREATE TRIGGER checkpoint_search_update AFTER UPDATE OF search_text ON checkpoint BEGIN
    INSERT INTO checkpoint_search(checkpoint_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO checkpoint_search(rowid, search_text) VALUES (new.rowid, new.search_text);
END;

-- label=K=V: one row per label, indexed by (key, value).
CREATE TABLE checkpoint_label (
    checkpoint_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, value, checkpoint_id)
) WITHOUT ROWID;
CREATE INDEX checkpoint_label_on_checkpoint ON checkpoint_label(checkpoint_id);
INSERT INTO checkpoint_label(checkpoint_id, key, value)
    SELECT checkpoint.id, each.key, each.value FROM checkpoint, json_each(checkpoint.labels) AS each
    WHERE each.type = 'text';
CREATE TRIGGER checkpoint_label_insert AFTER INSERT ON checkpoint BEGIN
    INSERT OR IGNORE INTO checkpoint_label(checkpoint_id, key, value)
        SELECT new.id, key, value FROM json_each(new.labels) WHERE type = 'text';
END;
CREATE TRIGGER checkpoint_label_delete AFTER DELETE ON checkpoint BEGIN
    DELETE FROM checkpoint_label WHERE checkpoint_id = old.id;
END;
CREATE TRIGGER checkpoint_label_update AFTER UPDATE OF labels ON checkpoint BEGIN
    DELETE FROM checkpoint_label WHERE checkpoint_id = old.id;
    INSERT OR IGNORE INTO checkpoint_label(checkpoint_id, key, value)
        SELECT new.id, key, value FROM json_each(new.labels) WHERE type = 'text';
END;

-- The unfiltered total without counting rows: kept by triggers.
CREATE TABLE checkpoint_total (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO checkpoint_total(only, count, bytes) SELECT 1, count(*), coalesce(sum(size), 0) FROM checkpoint;
CREATE TRIGGER checkpoint_total_insert AFTER INSERT ON checkpoint BEGIN
    UPDATE checkpoint_total SET count = count + 1, bytes = bytes + new.size WHERE only = 1;
END;
CREATE TRIGGER checkpoint_total_delete AFTER DELETE ON checkpoint BEGIN
    UPDATE checkpoint_total SET count = count - 1, bytes = bytes - old.size WHERE only = 1;
END;

-- Equality filters (namespace=, pod=, node=, image=, engine=) compare the columns themselves, which the sort
-- indexes (on coalesce(...)) cannot serve: one index per filter column, with the default sort (newest first) and
-- the cursor's tiebreak behind it, so a filtered first page is an index walk. Other sorts under a filter are
-- left to the planner with sqlite_stat1 (ANALYZE): a filter matching few rows sorts those, one matching many walks
-- the sort's index and skips the rest.
CREATE INDEX checkpoint_on_engine_uploaded ON checkpoint(engine, uploaded_at, id);
CREATE INDEX checkpoint_on_node_uploaded ON checkpoint(source_node, uploaded_at, id);
CREATE INDEX checkpoint_on_namespace_uploaded ON checkpoint(pod_namespace, uploaded_at, id);
CREATE INDEX checkpoint_on_pod_uploaded ON checkpoint(pod_name, uploaded_at, id);
CREATE INDEX checkpoint_on_image_uploaded ON checkpoint(image, uploaded_at, id);
CREATE INDEX checkpoint_on_container_uploaded ON checkpoint(container_name, uploaded_at, id);
CREATE INDEX checkpoint_on_validation_uploaded ON checkpoint(validation_state, uploaded_at, id);
DROP INDEX checkpoint_on_validation_state;
