import FerryAPI
import Crypto
import Foundation

/// Web page sign-ins: a random session ID in the browser's cookie, the identity it stands for here. The cookie never
/// holds a token, so a stolen cookie is worth one session (12 hours at most, and nothing after a restart), and a
/// token never sits in a browser's cookie jar. Only SHA-256 digests of session IDs are kept. One lock guards the map.
public final class SessionStore: @unchecked Sendable {
    // @unchecked Sendable invariant: `sessions` is only touched with `lock` held.
    private let lock = NSLock()
    private var sessions: [[UInt8]: (identity: TokenIdentity, expires: Date)] = [:]
    /// Seconds a session lasts.
    let lifetime: Double
    /// Sessions kept at most; the oldest go first.
    let capacity: Int

    public init(lifetime: Double = 12 * 3600, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// A new session for `identity`; its ID (64 hex digits) goes in the cookie.
    func create(for identity: TokenIdentity, now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let id = Hex.string((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        lock.lock()
        defer { lock.unlock() }
        sessions = sessions.filter { $0.value.expires > now }
        if sessions.count >= capacity, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
            sessions[oldest] = nil
        }
        sessions[Self.digest(id)] = (identity, now.addingTimeInterval(lifetime))
        return id
    }

    /// The identity of a live session.
    func identity(_ id: String, now: Date = Date()) -> TokenIdentity? {
        lock.lock()
        defer { lock.unlock() }
        guard let session = sessions[Self.digest(id)], session.expires > now else { return nil }
        return session.identity
    }

    func end(_ id: String) {
        lock.lock()
        sessions[Self.digest(id)] = nil
        lock.unlock()
    }

    private static func digest(_ id: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(id.utf8)))
    }
}
