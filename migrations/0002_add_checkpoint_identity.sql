-- Facts that validation, preflight and migration need without parsing the stored inspection: the pod and sandbox
-- identity, the image reference, the source architecture, MAC addresses and a lowercased text for free search.
ALTER TABLE checkpoint ADD COLUMN pod_uid TEXT;
ALTER TABLE checkpoint ADD COLUMN sandbox_id TEXT;
ALTER TABLE checkpoint ADD COLUMN image_id TEXT;
ALTER TABLE checkpoint ADD COLUMN architecture TEXT;
ALTER TABLE checkpoint ADD COLUMN mac_addresses TEXT NOT NULL DEFAULT '[]';
ALTER TABLE checkpoint ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
UPDATE checkpoint SET search_text = lower(
    container_name || ' ' || container_id || ' ' || coalesce(pod_name, '') || ' ' || coalesce(pod_namespace, '')
    || ' ' || coalesce(image, '') || ' ' || coalesce(source_node, '') || ' ' || engine || ' ' || labels);
