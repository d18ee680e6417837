/// Why an upload was refused. Archive problems keep the reader's code (`NOT_A_CHECKPOINT`, `ARCHIVE_TRUNCATED`, …).
struct IngestLimitExceeded: Error {
    var limit: Int64
}
