import FerryClient
import CheckpointArchive
import Foundation

/// Unpacks the CRIU images of a checkpoint archive for `criu restore`.
enum CheckpointImages {
    /// Extracts every regular file directly under `checkpoint/` into `directory` (created fresh, 0700; files
    /// 0600) and returns the names written. Everything else in the archive is skipped: the rootfs diff, metadata,
    /// symlinks (`checkpoint/parent`), devices, anything in a subdirectory.
    ///
    /// A path under `checkpoint/` with a `.` or `..` component (`checkpoint/../evil`, `checkpoint/x/../../y`)
    /// refuses the whole archive with `UNSAFE_ARCHIVE`: no file of a hostile archive is restored. Files are opened with `O_NOFOLLOW` in a directory that only this call has written to.
    /// Decompression is bounded as for the catalog's own reading (`CheckpointReadOptions.expansionLimit`).
    static func extract(archive: String, into directory: String) throws(AgentError) -> [String] {
        let fileManager = FileManager.default
        try? fileManager.removeItem(atPath: directory)
        do {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                            attributes: [.posixPermissions: 0o700])
        } catch {
            throw AgentError(.fileError, "cannot create the images directory \(directory)")
        }
        let prefix = CheckpointLayout.checkpointDirectory + "/"
        var written: [String] = []
        do {
            let reader = try ArchiveReader(path: archive)
            reader.expansionLimit = CheckpointReadOptions().expansionLimit
            while let entry = try reader.nextEntry() {
                guard entry.path.hasPrefix(prefix) else { continue }
                let name = String(entry.path.dropFirst(prefix.count))
                let components = name.split(separator: "/", omittingEmptySubsequences: false)
                guard !components.contains(where: { $0 == "." || $0 == ".." || $0.contains("\0") }) else {
                    throw AgentError(.unsafeArchive, "the archive has an unsafe entry name under checkpoint/; nothing was restored")
                }
                guard entry.kind == .regular, Self.isImageName(name) else { continue }
                try write(reader, to: directory + "/" + name)
                written.append(name)
            }
        } catch let error as AgentError {
            try? fileManager.removeItem(atPath: directory)
            throw error
        } catch let error as CheckpointError {
            try? fileManager.removeItem(atPath: directory)
            throw AgentError(.restoreFailed, "cannot read the checkpoint images: \(error.message) [\(error.code)]")
        } catch {
            try? fileManager.removeItem(atPath: directory)
            throw AgentError(.restoreFailed, "cannot read the checkpoint images")
        }
        return written
    }

    /// One path component, not `.` or `..`: a name that stays inside the images directory.
    static func isImageName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    private static func write(_ reader: ArchiveReader, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError(.fileError, "cannot create an image file in the images directory") }
        defer { close(fd) }
        try reader.readData { block, _ in
            guard FileWrite.all(fd, block) else { throw AgentError(.fileError, "cannot write an image file (disk full?)") }
            return true
        }
    }
}
