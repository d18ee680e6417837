-- PostgreSQL form of ../0009_add_checkpoint_source_image.sql.
ALTER TABLE checkpoint ADD COLUMN source_image TEXT;

DROP VIEW checkpoint_summary;
CREATE VIEW checkpoint_summary AS
SELECT checkpoint.*, json_strip_nulls(json_build_object(
    'id', id,
    'digest', 'sha256:' || id,
    'size', size,
    'compression', compression,
    'engine', engine,
    'container', json_build_object('id', container_id, 'name', container_name),
    'pod', json_build_object('name', pod_name, 'namespace', pod_namespace, 'uid', pod_uid, 'sandbox_id', sandbox_id),
    'image', image,
    'image_id', image_id,
    'runtime', runtime,
    'created', created,
    'checkpointed', checkpointed,
    'architecture', architecture,
    'ip_addresses', ip_addresses::json,
    'mac_addresses', mac_addresses::json,
    'checkpoint_size', checkpoint_size,
    'memory_pages_size', memory_pages_size,
    'rootfs_diff_size', rootfs_diff_size,
    'process_count', process_count,
    'source_node', source_node,
    'labels', labels::json,
    'uploaded_at', uploaded_at,
    'validation_state', validation_state,
    'source_image', source_image::json,
    'oci_reference', CASE WHEN oci_repository IS NOT NULL AND compression IN ('none', 'gzip', 'zstd')
        THEN ferry_registry_host() || '/' || oci_repository || ':' || substr(id, 1, 12) END,
    'links', json_build_object(
        'self', '/api/v1/checkpoints/' || id,
        'archive', '/api/v1/checkpoints/' || id || '/archive',
        'page', '/checkpoints/' || id)
))::text AS summary
FROM checkpoint;
