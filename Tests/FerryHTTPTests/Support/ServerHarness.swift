import FerryTestSupport
import Foundation
import Glibc
@testable import FerryHTTP

/// Starts a server on an ephemeral loopback port, runs `body`, and always shuts the server down.
func withServer<T>(_ handler: any HTTPHandler, configuration: HTTPServerConfiguration = .init(),
                   log: (@Sendable (String) -> Void)? = nil,
                   _ body: (HTTPServer, String) throws -> T) throws -> T {
    let server = HTTPServer(host: "127.0.0.1", port: 0, configuration: configuration, handler: handler, log: log)
    try server.start()
    defer { server.shutdown(timeout: 5) }
    return try body(server, "http://127.0.0.1:\(server.port)")
}

/// A value behind a lock, with a timed wait for a condition on it; for handlers to report to tests.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable invariant: `value` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withValue<R>(_ body: (inout Value) -> R) -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return body(&value)
    }

    var current: Value { withValue { $0 } }

    /// Waits up to `seconds` for `predicate`; returns the value then (whether or not it holds).
    func wait(seconds: Double, until predicate: (Value) -> Bool) -> Value {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(value) {
            if !condition.wait(until: deadline) { break }
        }
        return value
    }
}

/// What a finished curl left: exit status, HTTP status, headers (lowercased names, last wins), body, stderr.
struct CurlResult {
    var exitStatus: Int32
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var stderr: String

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The `{"error":{"code":…}}` code of a JSON error body.
    var errorCode: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let error = object["error"] as? [String: Any] else { return nil }
        return error["code"] as? String
    }

    var errorMessage: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let error = object["error"] as? [String: Any] else { return nil }
        return error["message"] as? String
    }
}

/// Runs /usr/bin/curl with a time limit, capturing headers and body in files (no pipes, no helper threads).
func curl(_ arguments: [String], maxTime: Int = 30) throws -> CurlResult {
    try CurlProcess(arguments, maxTime: maxTime).wait()
}

/// A curl started in the background; `wait()` collects it.
final class CurlProcess {
    private let directory: URL
    private let pid: pid_t
    private let urlCount: Int

    init(_ arguments: [String], maxTime: Int = 30) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-curl-\(UUID().uuidString)")
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // One -o per URL (curl pairs them in order), so several URLs in one invocation all land in files.
        let urlCount = max(1, arguments.filter { $0.hasPrefix("http://") || $0.hasPrefix("https://") }.count)
        self.urlCount = urlCount
        let outputs = (0..<urlCount).flatMap { ["-o", directory.appendingPathComponent("body\($0)").path] }
        let all = ["-sS", "--max-time", String(maxTime),
                   "-D", directory.appendingPathComponent("headers").path,
                   "-w", "%{http_code}"] + outputs + arguments
        pid = try Fixtures.spawn("/usr/bin/curl", all, stdout: directory.appendingPathComponent("stdout").path,
                                 stderr: directory.appendingPathComponent("stderr").path)
    }

    func wait() throws -> CurlResult {
        let status = Fixtures.wait(pid)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdout = String(decoding: (try? Data(contentsOf: directory.appendingPathComponent("stdout"))) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: (try? Data(contentsOf: directory.appendingPathComponent("stderr"))) ?? Data(), as: UTF8.self)
        let headerText = String(decoding: (try? Data(contentsOf: directory.appendingPathComponent("headers"))) ?? Data(), as: UTF8.self)
        // The bodies of all URLs, concatenated in order.
        let body = (0..<urlCount).flatMap { Array((try? Data(contentsOf: directory.appendingPathComponent("body\($0)"))) ?? Data()) }
        var headers: [String: String] = [:]
        // With several responses (100 Continue, or several URLs) keep the last block's fields.
        for line in headerText.split(separator: "\r\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("HTTP/") { headers = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let code = Int(stdout.suffix(3)) ?? 0
        return CurlResult(exitStatus: status, status: code, headers: headers, body: body, stderr: stderr)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A raw TCP client for what curl will not do: half an upload, then hang up; reading a HEAD reply to the end.
final class RawClient {
    private var fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        // sockaddr_in for 127.0.0.1:port written byte by byte: the test then touches no libc struct fields, whose
        // visibility under MemberImportVisibility depends on which C module Clang filed them under.
        let portBytes = withUnsafeBytes(of: port.bigEndian) { Array($0) }
        var address = withUnsafeBytes(of: UInt16(AF_INET)) { Array($0) } + portBytes + [127, 0, 0, 1]
        address += [UInt8](repeating: 0, count: 16 - address.count)
        let status = address.withUnsafeBytes {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard status == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect failed: \(errno)")
        }
        // struct timeval { time_t tv_sec; suseconds_t tv_usec; } on 64-bit Linux.
        var timeout: (Int, Int) = (10, 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<(Int, Int)>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<(Int, Int)>.size))
    }

    deinit { close() }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestFailure("send failed: \(errno)") }
            offset += sent
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Everything until the server closes (or the 10 s receive timeout).
    func readToEnd() -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return result }
            result.append(contentsOf: buffer[..<count])
        }
    }

    /// What arrives until 0.2 s pass without a byte once something came (or the server closes, or `seconds` pass).
    func readAvailable(seconds: Double) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let wait = result.isEmpty ? Int32(max(1, deadline.timeIntervalSinceNow * 1000)) : 200
            guard poll(&descriptor, 1, wait) > 0 else { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            result.append(contentsOf: buffer[..<count])
        }
        return result
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

/// This process's resident set size in bytes (VmRSS).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let digits = line.filter(\.isNumber)
        return (Int(digits) ?? 0) * 1024
    }
    return 0
}

/// FNV-1a 64, fed in pieces: the same value whatever the chunking.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        value = hash
    }
}

/// Writes `size` pseudo-random bytes to a new file and returns its path and FNV-1a hash.
func makeRandomFile(size: Int, in directory: URL, name: String = "upload.bin") throws -> (path: String, hash: UInt64) {
    let url = directory.appendingPathComponent(name)
    _ = FileManager.default.createFile(atPath: url.path, contents: nil)
    let handle = try FileHandle(forWritingTo: url)
    defer { try? handle.close() }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var hasher = FNV1a()
    var remaining = size
    var block = [UInt64](repeating: 0, count: 1 << 17)  // 1 MiB
    while remaining > 0 {
        for index in block.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            block[index] = state
        }
        let count = min(remaining, block.count * 8)
        try block.withUnsafeBytes { raw in
            let piece = UnsafeRawBufferPointer(rebasing: raw[..<count])
            hasher.update(piece)
            try handle.write(contentsOf: Data(piece))
        }
        remaining -= count
    }
    return (url.path, hasher.value)
}
