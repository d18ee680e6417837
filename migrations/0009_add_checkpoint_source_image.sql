-- A checkpoint ingested as a saved checkpoint image (oci-archive, docker-archive) keeps what the image said:
-- {"format": …, "reference": …, "annotations": {…}} (bounded: 64 annotations, 1024 characters each).
ALTER TABLE checkpoint ADD COLUMN source_image TEXT;

DROP VIEW checkpoint_summary;
-- As 0008, plus source_image.
CREATE VIEW checkpoint_summary AS
SELECT checkpoint.*, json_patch('{}', json_object(
    'id', id,
    'digest', 'sha256:' || id,
    'size', size,
    'compression', compression,
    'engine', engine,
    'container', json_object('id', container_id, 'name', container_name),
    'pod', json_object('name', pod_name, 'namespace', pod_namespace, 'uid', pod_uid, 'sandbox_id', sandbox_id),
    'image', image,
    'image_id', image_id,
    'runtime', runtime,
    'created', created,
    'checkpointed', checkpointed,
    'architecture', architecture,
    'ip_addresses', json(ip_addresses),
    'mac_addresses', json(mac_addresses),
    'checkpoint_size', checkpoint_size,
    'memory_pages_size', memory_pages_size,
    'rootfs_diff_size', rootfs_diff_size,
    'process_count', process_count,
    'source_node', source_node,
    'labels', json(labels),
    'uploaded_at', uploaded_at,
    'validation_state', validation_state,
    'source_image', json(source_image),
    'oci_reference', CASE WHEN oci_repository IS NOT NULL AND compression IN ('none', 'gzip', 'zstd')
        THEN ferry_registry_host() || '/' || oci_repository || ':' || substr(id, 1, 12) END,
    'links', json_object(
        'self', '/api/v1/checkpoints/' || id,
        'archive', '/api/v1/checkpoints/' || id || '/archive',
        'page', '/checkpoints/' || id)
)) AS summary
FROM checkpoint;
