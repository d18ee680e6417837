import CheckpointArchive
import FerryTestSupport
import FerryValidation
import Foundation

/// Builds variants of the real archives on the fly, each breaking one rule, and reads them back.
enum HostileArchive {
    static let podmanName = "podman-counter-none.tar"
    static let crioName = "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar"

    static let podman: [UInt8] = (try? Fixtures.uncompressedBytes(of: podmanName)) ?? []
    static let crio: [UInt8] = (try? Fixtures.uncompressedBytes(of: crioName)) ?? []

    /// `base` with the entries named in `replacing` swapped for new contents (appended at the end), the entries
    /// in `removing` left out, and whatever `adding` writes appended.
    static func bytes(
        from base: [UInt8], replacing: [String: [UInt8]] = [:], removing: Set<String> = [],
        adding: (inout TarBuilder) -> Void = { _ in }
    ) -> [UInt8] {
        var builder = TarBuilder()
        builder.copyEntries(of: base) { replacing[$0] != nil || removing.contains($0) }
        for name in replacing.keys.sorted() { builder.file(name, replacing[name]!) }
        adding(&builder)
        return builder.finished()
    }

    /// Writes the archive to a temporary file and reads it as Ferry does.
    static func manifest(_ bytes: [UInt8], options: CheckpointReadOptions = .init()) throws -> CheckpointManifest {
        try CheckpointReader.read(path: Fixtures.write(bytes), options: options)
    }

    static func findings(
        _ bytes: [UInt8], policy: ValidationPolicy = .init(), options: CheckpointReadOptions = .init()
    ) throws -> [Finding] {
        ArchiveValidator.findings(for: try manifest(bytes, options: options), policy: policy)
    }

    /// `spec.dump` of `base` with its annotations edited.
    static func specDump(of base: [UInt8], editing edit: (inout [String: String]) -> Void) throws -> [UInt8] {
        var spec = try JSONSerialization.jsonObject(with: Data(TarBuilder.extract("spec.dump", from: base))) as! [String: Any]
        var annotations = spec["annotations"] as? [String: String] ?? [:]
        edit(&annotations)
        spec["annotations"] = annotations
        return Array(try JSONSerialization.data(withJSONObject: spec))
    }

    /// `config.dump` of `base` with its keys edited.
    static func configDump(of base: [UInt8], editing edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var config = try JSONSerialization.jsonObject(with: Data(TarBuilder.extract("config.dump", from: base))) as! [String: Any]
        edit(&config)
        return Array(try JSONSerialization.data(withJSONObject: config))
    }

    static func json(_ value: Any) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: value))
    }

    /// A rootfs diff with one entry of every unsafe kind, in this order: traversal, absolute path, device node,
    /// FIFO, escaping symlink, escaping hard link, setuid file; plus harmless entries.
    static let unsafeInnerTar: [UInt8] = {
        var tar = TarBuilder()
        tar.directory("etc")
        tar.file("etc/motd", "hello\n")
        tar.file("../../etc/x", "x")
        tar.file("/etc/x", "x")
        tar.device("dev/sda", type: .blockDevice)
        tar.device("run/pipe", type: .fifo)
        tar.symlink("a/b", to: "../../../x")
        tar.symlink("a/fine", to: "/etc/passwd")
        tar.hardlink("h", to: "/etc/shadow")
        tar.file("usr/bin/su", "#!", mode: 0o4755)
        return tar.finished()
    }()

    /// The codes ``unsafeInnerTar`` yields, in order.
    static let unsafeInnerTarCodes: [FindingCode] = [
        .innerEntryPathTraversal, .innerEntryAbsolutePath, .innerEntryDeviceNode, .innerEntrySpecialFile,
        .innerEntrySymlinkEscapes, .innerEntryHardlinkEscapes, .innerEntrySetuid,
    ]
}

extension [Finding] {
    var codes: [FindingCode] { map { FindingCode(rawValue: $0.code) } }
}
