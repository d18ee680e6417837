-- PostgreSQL form of ../0010_index_checkpoint_search.sql.
--
-- q: a trigram GIN index over search_text (pg_trgm, a trusted extension of postgresql-contrib), which answers
-- search_text LIKE '%word%' without reading every row.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX checkpoint_search ON checkpoint USING gin (search_text gin_trgm_ops);

-- label=K=V: one row per label, indexed by (key, value), kept by a trigger.
CREATE TABLE checkpoint_label (
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key, value, checkpoint_id)
);
CREATE INDEX checkpoint_label_on_checkpoint ON checkpoint_label(checkpoint_id);
INSERT INTO checkpoint_label(checkpoint_id, key, value)
    SELECT checkpoint.id, each.key, each.value #>> '{}' FROM checkpoint, json_each(checkpoint.labels::json) AS each
    WHERE json_typeof(each.value) = 'string'
    ON CONFLICT DO NOTHING;
CREATE FUNCTION checkpoint_label_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM checkpoint_label WHERE checkpoint_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO checkpoint_label(checkpoint_id, key, value)
            SELECT NEW.id, each.key, each.value #>> '{}' FROM json_each(NEW.labels::json) AS each
            WHERE json_typeof(each.value) = 'string'
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER checkpoint_label_change AFTER INSERT OR DELETE ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION checkpoint_label_sync();
CREATE TRIGGER checkpoint_label_update AFTER UPDATE OF labels ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION checkpoint_label_sync();

-- The unfiltered total without counting rows: kept by a trigger. ("only" is a keyword in PostgreSQL.)
CREATE TABLE checkpoint_total (
    "only" INTEGER PRIMARY KEY CHECK ("only" = 1),
    count BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
INSERT INTO checkpoint_total("only", count, bytes) SELECT 1, count(*), coalesce(sum(size), 0) FROM checkpoint;
CREATE FUNCTION checkpoint_total_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE checkpoint_total SET count = count + 1, bytes = bytes + NEW.size;
    ELSE
        UPDATE checkpoint_total SET count = count - 1, bytes = bytes - OLD.size;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER checkpoint_total_change AFTER INSERT OR DELETE ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION checkpoint_total_sync();

-- Equality filters compare the columns themselves: one index per filter column with the default sort behind it.
CREATE INDEX checkpoint_on_engine_uploaded ON checkpoint(engine, uploaded_at, id);
CREATE INDEX checkpoint_on_node_uploaded ON checkpoint(source_node, uploaded_at, id);
CREATE INDEX checkpoint_on_namespace_uploaded ON checkpoint(pod_namespace, uploaded_at, id);
CREATE INDEX checkpoint_on_pod_uploaded ON checkpoint(pod_name, uploaded_at, id);
CREATE INDEX checkpoint_on_image_uploaded ON checkpoint(image, uploaded_at, id);
CREATE INDEX checkpoint_on_container_uploaded ON checkpoint(container_name, uploaded_at, id);
CREATE INDEX checkpoint_on_validation_uploaded ON checkpoint(validation_state, uploaded_at, id);
DROP INDEX checkpoint_on_validation_state;
