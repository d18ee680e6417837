@testable import FerryCatalog
import FerryServer
import FerryTestSupport
import Foundation
import Testing

/// Encryption at rest end to end: a real service with `--encryption-key`, the shipped archives, and the data
/// directory read byte by byte as an attacker who copied it would.
@Suite("encryption at rest", .serialized)
struct EncryptionAtRestTests {
    /// Small chunks, so the shipped archives span many of them and every boundary is exercised.
    static let chunk = 4096
    static let archives = ["podman-counter-none.tar", "podman-counter-gzip.tar.gz", "podman-counter-zstd.tar.zst",
                           "podman-checkpoint-image.oci.tar",
                           "crio-checkpoint-counter-7d9f8b6c5-x2kqz_shop-counter-2026-11-25T05:00:00Z.tar", "podman-web-tcp.tar"]
    /// Strings of the archives' contents (environment, command line, seccomp profile, memory pages): none of them
    /// may be anywhere under the data directory.
    static let secrets = ["SECRET_TOKEN=hunter2", "hunter2", "/var/lib/app/state", "echo $i", "SCMP_ACT_ERRNO",
                          "CAP_NET_BIND_SERVICE", "/tmp/created.txt"]

    static func keyFile(_ key: EncryptionKey = .generate()) throws -> String {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("ferry.key").path
        try key.write(toNewFile: path)
        return path
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Every regular file under `directory` (the SQLite database and its -wal and -shm included).
    static func files(under directory: URL) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: directory.path)
        return (enumerator?.compactMap { $0 as? String } ?? []).map { directory.appendingPathComponent($0).path }.filter {
            var info = stat()
            return stat($0, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
    }

    /// Where `needle` occurs in any file under `directory`: "file: needle".
    static func occurrences(of needles: [[UInt8]], under directory: URL) throws -> [String] {
        var found: [String] = []
        for file in files(under: directory) {
            let data = try bytes(file)
            for needle in needles where EncryptedBlobTestsSupport.contains(data, needle) {
                found.append("\(file): \(String(decoding: needle, as: UTF8.self).prefix(40))")
            }
        }
        return found
    }

    /// 48-byte windows of an archive file with many distinct bytes (no padding): a stored copy of the file, even
    /// compressed as uploaded, would contain them.
    static func windows(of file: String) throws -> [[UInt8]] {
        let data = try bytes(file)
        var windows: [[UInt8]] = []
        for fraction in stride(from: 0.1, to: 0.95, by: 0.1) {
            var start = Int(Double(data.count) * fraction)
            while start + 48 < data.count {
                let window = Array(data[start..<start + 48])
                if Set(window).count >= 24 { windows.append(window); break }
                start += 48
            }
        }
        return windows
    }

    /// The stored checkpoint ID of an upload.
    static func upload(_ server: TestServer, _ name: String) throws -> String {
        let response = try server.upload(Fixtures.archive(name))
        #expect(response.status == 201 || response.status == 200, "\(name): \(response.text)")
        return try #require((response.json["checkpoint"] as? [String: Any])?["id"] as? String)
    }

    @Test("no distinctive plaintext of any shipped archive is anywhere under the data directory, the catalog's files included")
    func noPlaintextUnderTheDataDirectory() throws {
        let key = try Self.keyFile()
        let server = try TestServer(encryptionKey: key, encryptionChunkSize: Self.chunk)
        var needles = Self.secrets.map { Array($0.utf8) }
        for name in Self.archives {
            let id = try Self.upload(server, name)
            needles += try Self.windows(of: Fixtures.archive(name))
            // The inspection is stored (and read back through the API) with every secret value in it.
            let detail = try server.request("GET", "/api/v1/checkpoints/\(id)")
            #expect(detail.status == 200)
            if name == "podman-counter-none.tar" { #expect(detail.text.contains("hunter2"), "the service itself still sees the values") }
        }
        // Decrypted reads meanwhile (the layer digests of gzip and zstd, a download) must not leave anything behind.
        #expect(try server.eventually(20) {
            (try server.request("GET", "/api/v1/checkpoints?limit=50").json["items"] as? [[String: Any]])?.count == Self.archives.count
        })
        let data = server.dataDirectory.appendingPathComponent("data")
        #expect(Self.files(under: data).contains { $0.hasSuffix("catalog.sqlite-wal") }, "the WAL is checked too")
        let found = try Self.occurrences(of: needles, under: data)
        #expect(found.isEmpty, "\(found)")
        // And the check is real: the same upload without encryption leaves them there.
        let plain = try TestServer()
        _ = try Self.upload(plain, "podman-counter-none.tar")
        #expect(try !Self.occurrences(of: [Array("SECRET_TOKEN=hunter2".utf8)], under: plain.dataDirectory.appendingPathComponent("data")).isEmpty)
    }

    @Test("downloads are byte-identical, and ranges at chunk boundaries are the original's slices")
    func downloadsAndRanges() throws {
        let server = try TestServer(encryptionKey: try Self.keyFile(), encryptionChunkSize: Self.chunk)
        let c = Self.chunk
        for name in Self.archives {
            let id = try Self.upload(server, name)
            let original = try Self.bytes(Fixtures.archive(name))
            let expected = name.hasSuffix(".oci.tar") ? nil : original
            let output = try Fixtures.temporaryDirectory().appendingPathComponent("download").path
            let download = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", output: output)
            let downloaded = try Self.bytes(output)
            #expect(download.status == 200 && download.headers["content-length"] == String(downloaded.count))
            #expect(try sha256(ofFile: output) == id, "\(name): the download is the archive uploaded")
            if let expected { #expect(try Self.bytes(output) == expected) }
            let stored = try Self.bytes(output)
            let size = stored.count
            let head = try server.request("HEAD", "/api/v1/checkpoints/\(id)/archive")
            #expect(head.headers["content-length"] == String(size) && head.headers["accept-ranges"] == "bytes")
            var ranges: [(String, Range<Int>)] = [
                ("0-0", 0..<1), ("\(c - 1)-\(c)", (c - 1)..<(c + 1)), ("\(c)-\(2 * c - 1)", c..<(2 * c)),
                ("\(c - 10)-\(3 * c + 5)", (c - 10)..<(3 * c + 6)), ("\(size - 1)-", (size - 1)..<size),
                ("-1", (size - 1)..<size), ("-\(c)", (size - c)..<size), ("-\(c + 1)", (size - c - 1)..<size),
                ("\(c)-", c..<size), ("\(size / c * c)-\(size + 100)", (size / c * c)..<size),
            ]
            ranges = ranges.filter { $0.1.lowerBound >= 0 && $0.1.upperBound <= size && !$0.1.isEmpty }
            for (spec, slice) in ranges {
                let part = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=\(spec)"])
                #expect(part.status == 206, "\(name) \(spec)")
                #expect(part.headers["content-range"] == "bytes \(slice.lowerBound)-\(slice.upperBound - 1)/\(size)", "\(name) \(spec)")
                #expect([UInt8](part.body) == Array(stored[slice]), "\(name) bytes=\(spec)")
            }
            let past = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=\(size)-"])
            #expect(past.status == 416)
            let etag = try #require(download.headers["etag"])
            #expect(try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["If-None-Match: \(etag)"]).status == 304)
        }
    }

    @Test("inspection, findings and facts are what an unencrypted service answers")
    func inspectionUnchanged() throws {
        let encrypted = try TestServer(encryptionKey: try Self.keyFile(), encryptionChunkSize: Self.chunk)
        let plain = try TestServer()
        for name in Self.archives {
            let id = try Self.upload(encrypted, name)
            #expect(try Self.upload(plain, name) == id)
            let a = try encrypted.request("GET", "/api/v1/checkpoints/\(id)").json
            let b = try plain.request("GET", "/api/v1/checkpoints/\(id)").json
            for field in ["inspection", "findings", "facts"] {
                #expect(NSDictionary(dictionary: ["v": a[field] ?? NSNull()]) == NSDictionary(dictionary: ["v": b[field] ?? NSNull()]),
                        "\(name): \(field)")
            }
            let page = try encrypted.request("GET", "/checkpoints/\(id)")
            #expect(page.status == 200)
        }
    }

    @Test("the registry view serves the layers byte for byte (skopeo checks every digest), Range included",
          .enabled(if: RegistryTests.clientsPresent))
    func registryLayers() throws {
        let server = try TestServer(encryptionKey: try Self.keyFile(), encryptionChunkSize: Self.chunk)
        for name in ["podman-counter-gzip.tar.gz", "podman-counter-zstd.tar.zst", "podman-counter-none.tar"] {
            let response = try server.upload(Fixtures.archive(name))
            let checkpoint = try #require(response.json["checkpoint"] as? [String: Any])
            let id = try #require(checkpoint["id"] as? String)
            let reference = try #require(checkpoint["oci_reference"] as? String)
            let directory = try Fixtures.temporaryDirectory()
            let copy = try Fixtures.run(RegistryTests.skopeo, ["--command-timeout", "60s", "copy", "--src-tls-verify=false",
                                                                "docker://\(reference)", "dir:\(directory.path)"])
            #expect(copy.status == 0, "\(copy.stderr)")
            #expect(FileManager.default.contentsEqual(atPath: directory.appendingPathComponent(id).path, andPath: Fixtures.archive(name)))
            let blob = try server.request("GET", "/v2/checkpoints/counter/blobs/sha256:\(id)", headers: ["Range: bytes=\(Self.chunk - 1)-\(Self.chunk)"])
            let original = try Self.bytes(Fixtures.archive(name))
            #expect(blob.status == 206 && [UInt8](blob.body) == Array(original[(Self.chunk - 1)...Self.chunk]))
        }
    }

    @Test("a changed byte or chunk in a stored blob ends the download early, never with other bytes; untouched ranges still read")
    func tamperedBlob() throws {
        let server = try TestServer(encryptionKey: try Self.keyFile(), encryptionChunkSize: Self.chunk)
        let name = "podman-counter-none.tar"
        let id = try Self.upload(server, name)
        let original = try Self.bytes(Fixtures.archive(name))
        let path = server.blobsDirectory.appendingPathComponent("\(id.prefix(2))/\(id)").path
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        let sealed = Self.chunk + 16
        var changed = stored
        changed[32 + 10 * sealed + 7] ^= 0x20  // chunk 10
        try changed.write(to: URL(fileURLWithPath: path))

        let output = try Fixtures.temporaryDirectory().appendingPathComponent("download").path
        let curl = try Fixtures.run("/usr/bin/curl", ["-sS", "--max-time", "30", "-o", output, server.base + "/api/v1/checkpoints/\(id)/archive"])
        #expect(curl.status != 0, "curl sees the body end short")
        // curl writes nothing when the first block already held the changed chunk.
        let received = (try? Self.bytes(output)) ?? []
        #expect(received.count < original.count && received.count <= 10 * Self.chunk)
        #expect(received == Array(original.prefix(received.count)), "what was sent is the archive's own bytes")
        let broken = try Fixtures.run("/usr/bin/curl", ["-sS", "--max-time", "30", "-o", "/dev/null", "-r", "\(10 * Self.chunk)-\(10 * Self.chunk + 5)",
                                                       server.base + "/api/v1/checkpoints/\(id)/archive"])
        #expect(broken.status != 0)
        let untouched = try server.request("GET", "/api/v1/checkpoints/\(id)/archive", headers: ["Range: bytes=\(2 * Self.chunk)-\(3 * Self.chunk)"])
        #expect(untouched.status == 206 && [UInt8](untouched.body) == Array(original[(2 * Self.chunk)...(3 * Self.chunk)]))

        // Cut short: refused before a byte is sent.
        try stored.prefix(stored.count - 3).write(to: URL(fileURLWithPath: path))
        let cut = try server.request("GET", "/api/v1/checkpoints/\(id)/archive")
        #expect(cut.status == 500 && cut.errorCode == "BLOB_CORRUPT", "\(cut.text)")
    }

    @Test("start-up refuses a wrong key, a missing key and a key file others can read, each with its code")
    func startUpChecks() throws {
        let key = try Self.keyFile()
        let first = try TestServer(encryptionKey: key, encryptionChunkSize: Self.chunk)
        _ = try Self.upload(first, "podman-counter-none.tar")
        let directory = first.dataDirectory
        first.running.stop(timeout: 5)
        func code(_ start: () throws -> TestServer) -> String? {
            do {
                _ = try start()
                return nil
            } catch let error as CatalogError {
                return error.code.rawValue
            } catch {
                return "\(error)"
            }
        }
        #expect(code { try TestServer(reusing: directory, encryptionKey: try Self.keyFile()) } == "ENCRYPTION_KEY_MISMATCH")
        #expect(code { try TestServer(reusing: directory) } == "ENCRYPTION_KEY_REQUIRED")
        chmod(key, 0o640)
        #expect(code { try TestServer(reusing: directory, encryptionKey: key) } == "ENCRYPTION_KEY_UNSAFE")
        chmod(key, 0o600)
        let again = try TestServer(reusing: directory, encryptionKey: key)
        let list = try again.request("GET", "/api/v1/checkpoints").json["items"] as? [[String: Any]]
        #expect(list?.count == 1)
    }

    @Test("ferry keygen writes a 0600 key and never overwrites one; ferry serve reports the codes on stderr")
    func keygen() throws {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("k").path
        let made = try Fixtures.ferry(["keygen", "-o", path])
        #expect(made.status == 0, "\(made.stderr)")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(try EncryptionKey(fileText: text).id.count == 16)
        let again = try Fixtures.ferry(["keygen", "-o", path])
        #expect(again.status == 1 && again.stderr.contains("ENCRYPTION_KEY_EXISTS"), "\(again.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
        chmod(path, 0o644)
        let data = try Fixtures.temporaryDirectory().path
        let serve = try Fixtures.ferry(["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--encryption-key", path])
        #expect(serve.status != 0 && serve.stderr.contains("ENCRYPTION_KEY_UNSAFE"), "\(serve.stderr)")
    }

    /// Blob and key files of a data directory: path → (SHA-256, mtime).
    static func blobState(_ data: URL) throws -> [String: String] {
        var state: [String: String] = [:]
        for file in files(under: data.appendingPathComponent("blobs")) where !file.hasSuffix(".key") {
            var info = stat()
            stat(file, &info)
            state[file] = try sha256(ofFile: file) + " \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
        return state
    }

    /// The key id each key file of a data directory is wrapped under.
    static func keyIDs(_ data: URL) throws -> [String] {
        try files(under: data).filter { $0.hasSuffix(".key") }.map { file in
            try WrappedDataKey(bytes: Self.bytes(file), context: file).keyID
        }
    }

    /// A stopped service's data directory holding `archives`, encrypted under `old`; the two keys' files.
    struct RotationSetup {
        var old = EncryptionKey.generate()
        var new = EncryptionKey.generate()
        var oldFile = "", newFile = ""
        var ids: [String] = []
        var directory: URL
        var data: URL { directory.appendingPathComponent("data") }

        init(archives: ArraySlice<String>) throws {
            oldFile = try EncryptionAtRestTests.keyFile(old)
            newFile = try EncryptionAtRestTests.keyFile(new)
            let server = try TestServer(encryptionKey: oldFile, encryptionChunkSize: EncryptionAtRestTests.chunk)
            for name in archives { ids.append(try EncryptionAtRestTests.upload(server, name)) }
            directory = server.dataDirectory
            server.running.stop(timeout: 5)
        }
    }

    @Test("ferry rekey re-wraps every data key without touching a blob; then only the new key opens the store")
    func rotation() throws {
        let setup = try RotationSetup(archives: Self.archives.prefix(3))
        let (new, oldFile, newFile, ids, directory, data) = (setup.new, setup.oldFile, setup.newFile, setup.ids, setup.directory, setup.data)
        let before = try Self.blobState(data)
        #expect(before.count == 3)

        let rekey = try Fixtures.ferry(["rekey", "--data-dir", data.path, "--old-key", oldFile, "--new-key", newFile, "--json"])
        #expect(rekey.status == 0, "\(rekey.stderr)")
        #expect(rekey.stdout.contains("\"rewrapped\":4"), "3 blobs and the catalog's key: \(rekey.stdout)")
        #expect(try Self.blobState(data) == before, "no blob file was rewritten")
        #expect(try Set(Self.keyIDs(data)) == [new.id])

        #expect(throws: CatalogError.self) { try TestServer(reusing: directory, encryptionKey: oldFile) }
        let reopened = try TestServer(reusing: directory, encryptionKey: newFile)
        for (id, name) in zip(ids, Self.archives) {
            let output = try Fixtures.temporaryDirectory().appendingPathComponent("d").path
            #expect(try reopened.request("GET", "/api/v1/checkpoints/\(id)/archive", output: output).status == 200)
            #expect(try sha256(ofFile: output) == id, "\(name)")
            #expect(try reopened.request("GET", "/api/v1/checkpoints/\(id)").json["inspection"] != nil)
        }
        // A second run (the service stopped) has nothing left to do.
        reopened.running.stop(timeout: 5)
        let twice = try Fixtures.ferry(["rekey", "--data-dir", data.path, "--old-key", oldFile, "--new-key", newFile, "--json"])
        #expect(twice.stdout.contains("\"already_new\":4") && twice.stdout.contains("\"rewrapped\":0"), "\(twice.stdout) \(twice.stderr)")
    }

    @Test("a rotation killed with SIGKILL part-way leaves every blob readable with one of the two keys, and a rerun finishes it")
    func killedRotation() throws {
        let setup = try RotationSetup(archives: Self.archives[...])
        let (old, new, oldFile, newFile, ids, directory, data) = (setup.old, setup.new, setup.oldFile, setup.newFile, setup.ids, setup.directory, setup.data)

        let killed = try Fixtures.run(Fixtures.ferryBinary, ["rekey", "--data-dir", data.path, "--old-key", oldFile, "--new-key", newFile],
                                      environment: ProcessInfo.processInfo.environment.merging(["FERRY_TEST_REKEY_KILL_AFTER": "3"]) { $1 })
        #expect(killed.status != 0, "killed: \(killed.status)")
        let split = try Self.keyIDs(data)
        #expect(split.filter { $0 == new.id }.count == 3 && split.filter { $0 == old.id }.count == split.count - 3, "\(split)")
        // Every blob opens with the key its file names, and reads back as the archive.
        for id in ids {
            var opened = false
            for key in [old, new] {
                let store = try BlobStore(dataDirectory: data.path, removingLeftovers: false, encryption: BlobEncryption(key: key))
                guard let reader = try? store.openReader(id) else { continue }
                let copy = try Fixtures.temporaryDirectory().appendingPathComponent("b")
                _ = FileManager.default.createFile(atPath: copy.path, contents: nil)
                let handle = try FileHandle(forWritingTo: copy)
                try reader.stream { handle.write(Data($0)) }
                try handle.close()
                #expect(try sha256(ofFile: copy.path) == id)
                opened = true
            }
            #expect(opened, "\(id.prefix(12)) opens with one of the keys")
        }
        // Half-way, neither key alone starts the service; the rerun finishes and the new key does.
        #expect(throws: CatalogError.self) { try TestServer(reusing: directory, encryptionKey: newFile) }
        let rerun = try Fixtures.ferry(["rekey", "--data-dir", data.path, "--old-key", oldFile, "--new-key", newFile, "--json"])
        #expect(rerun.status == 0 && rerun.stdout.contains("\"already_new\":3"), "\(rerun.stdout) \(rerun.stderr)")
        let reopened = try TestServer(reusing: directory, encryptionKey: newFile)
        for id in ids {
            let output = try Fixtures.temporaryDirectory().appendingPathComponent("d").path
            #expect(try reopened.request("GET", "/api/v1/checkpoints/\(id)/archive", output: output).status == 200)
            #expect(try sha256(ofFile: output) == id)
        }
    }

    @Test("a live upload is sealed as it arrives: readers get whole chunks only, the temporary file holds no plaintext, the end is byte-identical")
    func liveUpload() throws {
        let server = try TestServer(encryptionKey: try Self.keyFile(), encryptionChunkSize: Self.chunk)
        let name = "podman-counter-none.tar"
        let archive = try Self.bytes(Fixtures.archive(name))
        let half = archive.count / 2 + 100
        let upload = try PacedUpload(port: server.running.port, path: "/api/v1/checkpoints?node=node-a", total: archive.count,
                                     headers: ["Ferry-Upload-ID: enc-job-1"])
        try upload.send(archive[..<half])
        let status = "/api/v1/nodes/node-a/uploads/enc-job-1"
        let whole = half / Self.chunk * Self.chunk
        #expect(try server.eventually(10) { try server.request("GET", status).json["bytes_received"] as? Int == whole })
        let first = try server.request("GET", status + "/archive", headers: ["Range: bytes=0-"])
        #expect(first.status == 206 && first.headers["content-range"] == "bytes 0-\(whole - 1)/*", "\(first.headers)")
        #expect([UInt8](first.body) == Array(archive[..<whole]))
        let middle = try server.request("GET", status + "/archive", headers: ["Range: bytes=\(Self.chunk - 3)-\(2 * Self.chunk + 2)"])
        #expect([UInt8](middle.body) == Array(archive[(Self.chunk - 3)...(2 * Self.chunk + 2)]))
        // Mid-upload, the temporary file is ciphertext too.
        let found = try Self.occurrences(of: Self.secrets.map { Array($0.utf8) } + Self.windows(of: Fixtures.archive(name)),
                                         under: server.dataDirectory.appendingPathComponent("data"))
        #expect(found.isEmpty, "\(found)")
        #expect(!Self.files(under: server.temporaryDirectory).isEmpty, "the upload is in tmp/ while it arrives")

        try upload.send(archive[half...])
        let answer = try upload.finish()
        #expect(answer.status == 201)
        let done = try server.request("GET", status + "/archive")
        #expect(done.status == 206 && done.headers["content-range"] == "bytes 0-\(archive.count - 1)/\(archive.count)")
        #expect([UInt8](done.body) == archive)
    }
}

/// memmem over byte arrays.
enum EncryptedBlobTestsSupport {
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return false }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in glibcMemmem(h.baseAddress, h.count, n.baseAddress, n.count) != nil }
        }
    }
}

/// glibc's memmem, looked up at run time (Swift's Glibc module leaves out GNU extensions).
private let glibcMemmem: @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer? = {
    unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memmem")!,
                  to: (@convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer?).self)
}()
