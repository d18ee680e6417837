import FerryTestSupport
import Foundation

/// An upload whose body the test sends piece by piece over a raw loopback connection, so the test decides what the
/// service has received at each moment (`send`), then reads the answer (`finish`) or hangs up (`abort`).
final class PacedUpload {
    private let fd: Int32
    private(set) var sent = 0
    let total: Int

    /// Connects and sends the request head announcing `total` body bytes.
    init(port: UInt16, path: String = "/api/v1/checkpoints", total: Int, headers: [String]) throws {
        self.total = total
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw FixtureError("connect failed")
        }
        let head = (["POST \(path) HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/x-tar", "Content-Length: \(total)"]
            + headers).joined(separator: "\r\n") + "\r\n\r\n"
        try write(Array(head.utf8))
    }

    deinit { close(fd) }

    /// Sends body bytes.
    func send(_ bytes: ArraySlice<UInt8>) throws {
        try write(Array(bytes))
        sent += bytes.count
    }

    /// Reads the response (after the whole body was sent): its status and body.
    func finish() throws -> (status: Int, body: [String: Any]) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[..<count]
            let text = String(decoding: received, as: UTF8.self)
            if let split = text.range(of: "\r\n\r\n"),
               let length = text[..<split.lowerBound].split(separator: "\r\n")
                .first(where: { $0.lowercased().hasPrefix("content-length:") })
                .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }),
               text.utf8.distance(from: split.upperBound.samePosition(in: text.utf8)!, to: text.utf8.endIndex) >= length {
                break
            }
        }
        let text = String(decoding: received, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        return (status, json)
    }

    /// Hangs up mid-body.
    func abort() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw FixtureError("send failed") }
            offset += count
        }
    }
}
