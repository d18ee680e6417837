import CheckpointArchive
import FerryTestSupport
import Foundation
@testable import FerryValidation
import Testing

/// Inner tars, `deleted.files` and `bind.mounts`: what a restore writes, removes or creates on the host.
@Suite("Content rules")
struct ContentRuleTests {
    @Test("a rootfs diff with every kind of unsafe entry gives one finding per entry, in order")
    func aRootfsDiffWithUnsafeEntriesGivesOneFindingPerEntry() throws {
        let bytes = HostileArchive.bytes(
            from: HostileArchive.podman, replacing: ["rootfs-diff.tar": HostileArchive.unsafeInnerTar])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == HostileArchive.unsafeInnerTarCodes)
        #expect(findings.map(\.path) == [
            "rootfs-diff.tar:../../etc/x", "rootfs-diff.tar:/etc/x", "rootfs-diff.tar:dev/sda", "rootfs-diff.tar:run/pipe",
            "rootfs-diff.tar:a/b", "rootfs-diff.tar:h", "rootfs-diff.tar:usr/bin/su",
        ])
        #expect(findings.map(\.severity) == Array(repeating: .error, count: 6) + [.warning])
        #expect(findings[4].message.contains("../../../x"))
        #expect(findings[5].message.contains("/etc/shadow"))
        #expect(findings[6].waiver == "--allow-setuid")
    }

    @Test("allowing setuid drops only the setuid finding")
    func allowingSetuidDropsOnlyTheSetuidFinding() throws {
        let bytes = HostileArchive.bytes(
            from: HostileArchive.podman, replacing: ["rootfs-diff.tar": HostileArchive.unsafeInnerTar])
        var policy = ValidationPolicy()
        policy.allowSetuid = true
        let findings = try HostileArchive.findings(bytes, policy: policy)
        #expect(findings.codes == HostileArchive.unsafeInnerTarCodes.dropLast())
        #expect(findings.allSatisfy { $0.severity == .error })
    }

    @Test("the same rules apply to devshm-checkpoint.tar and to volume tars")
    func theSameRulesApplyToDevShmAndVolumes() throws {
        let bytes = HostileArchive.bytes(
            from: HostileArchive.podman,
            replacing: ["devshm-checkpoint.tar": HostileArchive.unsafeInnerTar, "volumes/data.tar": HostileArchive.unsafeInnerTar])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == HostileArchive.unsafeInnerTarCodes + HostileArchive.unsafeInnerTarCodes)
        #expect(findings.first?.path == "devshm-checkpoint.tar:../../etc/x")
        #expect(findings.last?.path == "volumes/data.tar:usr/bin/su")
    }

    @Test("a gzip rootfs diff that decompresses without bound is unreadable, and says it is a bomb")
    func aGzipBombRootfsDiffIsUnreadable() throws {
        // 256 MiB of zeros in one file, gzip-compressed to ~250 KiB, as containerd's gzip rootfs diff would be.
        // The zeros are streamed through gzip by the shell so the test never holds them in memory.
        let size = 256 << 20
        let header = try Fixtures.write(TarBuilder.regularFileHeader("var/zeros", size: size), name: "header")
        let script = "(cat '\(header)'; head -c \(size + 1024) /dev/zero) | gzip -c"
        let compressed = try Fixtures.run("/bin/sh", ["-c", script])
        #expect(compressed.status == 0, "\(compressed.stderr)")
        let bomb = Array(compressed.stdoutData)
        #expect(bomb.count > 128 << 10 && bomb.count < 1 << 20)
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, replacing: ["rootfs-diff.tar": bomb])
        // The reader's default bound (1000:1 past 1 GiB) is meant for whole checkpoints; a tighter one keeps the
        // test from inflating gigabytes while exercising the same path.
        var options = CheckpointReadOptions()
        options.expansionLimit = (ratio: 10, allowance: 1 << 20)
        let findings = try HostileArchive.findings(bytes, options: options)
        #expect(findings.codes == [.innerTarUnreadable])
        #expect(findings.first?.path == "rootfs-diff.tar")
        #expect(findings.first?.message.contains("DECOMPRESSION_BOMB") == true)
    }

    @Test("a rootfs diff that is not a tar is unreadable")
    func aRootfsDiffThatIsNotATarIsUnreadable() throws {
        let garbage = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, replacing: ["rootfs-diff.tar": garbage])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.innerTarUnreadable])
        #expect(findings.first?.severity == .error)
    }

    @Test("inner tars over the policy's size and entry limits are errors")
    func innerTarsOverThePolicyLimitsAreErrors() throws {
        var policy = ValidationPolicy()
        policy.maxInnerTarBytes = 12
        policy.maxInnerTarEntries = 4
        // The real rootfs diff holds 3 files of 13 bytes and 2 directories; devshm holds one directory.
        let findings = try HostileArchive.findings(HostileArchive.podman, policy: policy)
        #expect(findings.codes == [.innerTarTooManyEntries, .innerTarTooLarge])
        #expect(findings.allSatisfy { $0.path == "rootfs-diff.tar" && $0.severity == .error })
        policy.maxInnerTarBytes = 13
        policy.maxInnerTarEntries = 5
        #expect(try HostileArchive.findings(HostileArchive.podman, policy: policy) == [])
    }

    @Test("more unsafe entries than the reader lists make the tar fail as a whole")
    func moreUnsafeEntriesThanListedFail() throws {
        var tar = TarBuilder()
        for index in 0..<(TarSummary.issueLimit + 5) { tar.device("dev/d\(index)") }
        let bytes = HostileArchive.bytes(from: HostileArchive.podman, replacing: ["rootfs-diff.tar": tar.finished()])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == Array(repeating: .innerEntryDeviceNode, count: TarSummary.issueLimit) + [.innerTarTooManyIssues])
        #expect(findings.last?.message.hasPrefix("has 5 more unsafe entries") == true)
    }

    @Test("deleted.files entries that are not clean absolute paths are errors, one each")
    func uncleanDeletedFilesAreErrors() throws {
        let entries = ["/etc/passwd", "etc/passwd", "/", "/etc/../../x", "//etc/shadow", "/a/./b", "/a\u{0}b", "/etc/", ""]
        let bytes = HostileArchive.bytes(
            from: HostileArchive.podman, replacing: ["deleted.files": try HostileArchive.json(entries)])
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == Array(repeating: .deletedFileInvalid, count: 8))
        #expect(findings.map(\.path) == (1...8).map { "deleted.files[\($0)]" })
        #expect(findings.map { $0.message.components(separatedBy: "\" ").last ?? "" } == [
            "is not absolute; a restore removes this path", "is the root directory; a restore removes this path",
            "has a .. component; a restore removes this path", "has an empty component (//); a restore removes this path",
            "has a . component; a restore removes this path", "contains a NUL byte; a restore removes this path",
            "ends with /; a restore removes this path", "is empty; a restore removes this path",
        ])
    }

    @Test("bind mounts with host-sensitive sources, bad paths, types or permissions are flagged (cri-o#10106)")
    func craftedBindMountsAreFlagged() throws {
        let mounts: [[String: Any]] = [
            ["source": "/var/lib/shop/cache", "destination": "/cache", "file_type": "directory", "permissions": 0o755],
            ["source": "/etc", "destination": "/host-etc", "file_type": "directory", "permissions": 0o755],
            ["source": "/etc/cron.d/evil", "destination": "/x", "file_type": "file", "permissions": 0o644],
            ["source": "/var/lib/shop/../kubelet/pki", "destination": "/pki", "file_type": "directory", "permissions": 0o755],
            ["source": "/var/run/docker.sock", "destination": "/docker.sock", "file_type": "file", "permissions": 0o660],
            ["source": "/", "destination": "/host", "file_type": "directory", "permissions": 0o755],
            ["source": "relative/dir", "destination": "/rel", "file_type": "directory", "permissions": 0o755],
            ["source": "/srv/a", "destination": "../../escape", "file_type": "directory", "permissions": 0o755],
            ["source": "/srv/b", "destination": "/b", "file_type": "socket", "permissions": 0o755],
            ["source": "/srv/c", "destination": "/c", "permissions": 0o755],
            ["source": "/srv/d", "destination": "/d", "file_type": "file", "permissions": 0o100644],
            ["source": "/srv/e", "destination": "/e", "file_type": "directory", "permissions": 0o777],
            ["source": "/srv/tmp", "destination": "/tmp2", "file_type": "directory", "permissions": 0o1777],
            ["source": "/etcetera", "destination": "/etcetera", "file_type": "directory", "permissions": 0o755],
        ]
        let bytes = HostileArchive.bytes(
            from: HostileArchive.crio, replacing: ["bind.mounts": try HostileArchive.json(mounts)])
        let findings = try HostileArchive.findings(bytes)
        let expected: [(String, FindingCode, Finding.Severity)] = [
            ("bind.mounts[1]", .bindMountSensitiveSource, .error),
            ("bind.mounts[2]", .bindMountSensitiveSource, .error),
            ("bind.mounts[3]", .bindMountPathInvalid, .error),
            ("bind.mounts[3]", .bindMountSensitiveSource, .error),
            ("bind.mounts[4]", .bindMountSensitiveSource, .error),
            ("bind.mounts[5]", .bindMountPathInvalid, .error),
            ("bind.mounts[5]", .bindMountSensitiveSource, .error),
            ("bind.mounts[6]", .bindMountPathInvalid, .error),
            ("bind.mounts[7]", .bindMountPathInvalid, .error),
            ("bind.mounts[8]", .bindMountTypeInvalid, .error),
            ("bind.mounts[9]", .bindMountTypeInvalid, .error),
            ("bind.mounts[10]", .bindMountPermissionsInvalid, .error),
            ("bind.mounts[11]", .bindMountWorldWritable, .warning),
        ]
        #expect(findings.map(\.path) == expected.map(\.0))
        #expect(findings.codes == expected.map(\.1))
        #expect(findings.map(\.severity) == expected.map(\.2))
        #expect(findings[0].message.contains("is the host-sensitive path /etc"))
        #expect(findings[1].message.contains("lies under the host-sensitive path /etc"))
        #expect(findings[3].message.contains("/var/lib/kubelet"))
    }

    @Test("paths are cleaned lexically before they are matched against the sensitive list")
    func pathsAreCleanedBeforeMatching() {
        #expect(ContentRules.lexicallyCleaned("/var/lib/../../etc//x/.") == "/etc/x")
        #expect(ContentRules.lexicallyCleaned("/../..") == "/")
        let sensitive = ValidationPolicy.defaultSensitiveHostPaths
        #expect(ContentRules.sensitivePath(containing: "/proc/1/root", in: sensitive) == "/proc")
        #expect(ContentRules.sensitivePath(containing: "/procfs", in: sensitive) == nil)
        #expect(ContentRules.sensitivePath(containing: "/srv", in: sensitive) == nil)
        #expect(ContentRules.sensitivePath(containing: "//", in: sensitive) == "/")
    }
}

/// The archive's own shape: duplicates, unsafe outer paths, unknown root entries.
@Suite("Archive shape rules")
struct ShapeRuleTests {
    @Test("an entry that appears twice is an error")
    func aDuplicateEntryIsAnError() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman) { $0.file("ctr.log", "second copy") }
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.archiveDuplicateEntry])
        #expect(findings.first?.path == "ctr.log")
        #expect(findings.first?.severity == .error)
    }

    @Test("entries with an absolute path or .. are errors, one each")
    func unsafeOuterPathsAreErrors() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman) {
            $0.file("../../etc/cron.d/evil", "* * * * * root sh")
            $0.file("/etc/evil", "x")
        }
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.archiveUnsafePath, .archiveUnsafePath])
        #expect(findings.map(\.path) == ["../../etc/cron.d/evil", "/etc/evil"])
    }

    @Test("an entry at the root that no engine writes is only an info")
    func anUnknownRootEntryIsAnInfo() throws {
        let bytes = HostileArchive.bytes(from: HostileArchive.podman) { $0.file("notes.txt", "hello") }
        let findings = try HostileArchive.findings(bytes)
        #expect(findings.codes == [.archiveUnknownEntry])
        #expect(findings.first?.severity == .info)
        #expect(findings.first?.path == "notes.txt")
    }

    @Test("a finding's text line escapes control characters in hostile names")
    func aFindingLineEscapesControlCharacters() {
        let finding = Finding(.archiveUnsafePath, .error, path: "/etc/x\nerror FAKE", "has an absolute path")
        #expect(finding.description == "error ARCHIVE_UNSAFE_PATH /etc/x\\u{a}error FAKE: has an absolute path")
        #expect(!finding.description.contains("\n"))
    }
}
