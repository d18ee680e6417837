/// An upload grew past the service's size limit (`PAYLOAD_TOO_LARGE`). Archive problems are the reader's
/// `CheckpointError`s instead.
struct IngestLimitExceeded: Error {
    var limit: Int64
}
