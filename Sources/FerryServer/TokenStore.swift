import Crypto
import Foundation

/// What a bearer token may do. `admin` ⊇ `write` ⊇ `read`; `node` is what a node agent needs: read, download and
/// report its own facts.
public enum TokenRole: String, Sendable, CaseIterable, Comparable {
    case read, node, write, admin

    /// Whether a token of this role may do what `needed` asks.
    public func allows(_ needed: TokenRole) -> Bool {
        switch needed {
        case .read: return true
        case .node: return self == .node || self == .admin
        case .write: return self == .write || self == .admin
        case .admin: return self == .admin
        }
    }

    public static func < (lhs: TokenRole, rhs: TokenRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// An authenticated caller.
public struct TokenIdentity: Sendable, Equatable {
    public var name: String
    public var role: TokenRole
}

/// Bearer tokens from a tokens file, one per line: `ROLE TOKEN [NAME]`, `#` comments. Only SHA-256 digests of the
/// tokens are kept in memory, and lookups compare digests, so timing says nothing about a token's prefix.
///
/// Node tokens are the exception: each is also kept as it is, by its node's name, because it is the credential the
/// service calls that node's agent back with. A replica that never saw the node's heartbeat (it reached another
/// one) still has it.
public struct TokenStore: Sendable {
    private let identities: [[UInt8]: TokenIdentity]
    private let nodeTokens: [String: String]

    /// No tokens: every request is anonymous (allowed only on loopback; `ferry serve` enforces that).
    public static let open = TokenStore(identities: [:], nodeTokens: [:])

    public var isEmpty: Bool { identities.isEmpty }

    private init(identities: [[UInt8]: TokenIdentity], nodeTokens: [String: String]) {
        self.identities = identities
        self.nodeTokens = nodeTokens
    }

    /// The token of the `node` line naming `node`, if exactly one does.
    public func nodeToken(named node: String) -> String? { nodeTokens[node] }

    /// Parses a tokens file's text. Throws with the line number of a bad line.
    public init(text: String) throws {
        var identities: [[UInt8]: TokenIdentity] = [:]
        var lines: [[UInt8]: Int] = [:]
        var nodeTokens: [String: String] = [:]
        var ambiguousNodes: Set<String> = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let role = TokenRole(rawValue: String(fields[0])) else {
                throw TokenFileError(line: index + 1, reason: "expected `ROLE TOKEN [NAME]` with ROLE one of read, node, write, admin")
            }
            let token = String(fields[1])
            guard token.count >= 16 else {
                throw TokenFileError(line: index + 1, reason: "tokens must be at least 16 characters")
            }
            let name = fields.count > 2 ? fields[2...].joined(separator: " ") : "token-\(index + 1)"
            let digest = Self.digest(token)
            if let earlier = lines[digest] {
                // One token under two roles would make its rights depend on the line order.
                throw TokenFileError(line: index + 1, reason: "the same token as line \(earlier); give every role and name its own token")
            }
            lines[digest] = index + 1
            identities[digest] = TokenIdentity(name: name, role: role)
            if role == .node && fields.count > 2 {
                // Two tokens for one node (a rotation in progress): which the agent holds is not known.
                if nodeTokens.updateValue(token, forKey: name) != nil { ambiguousNodes.insert(name) }
            }
        }
        guard !identities.isEmpty else { throw TokenFileError(line: 0, reason: "the tokens file holds no token") }
        self.identities = identities
        self.nodeTokens = nodeTokens.filter { !ambiguousNodes.contains($0.key) }
    }

    /// Reads a tokens file, which must be readable by its owner only (mode 0600 or stricter): it holds every
    /// credential of the service.
    public init(contentsOfFile path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw TokenFileError(line: 0, reason: "cannot read \(path)") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw TokenFileError(line: 0, reason: "\(path) is readable by group or others (mode \(String(mode, radix: 8))); run chmod 600 \(path)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TokenFileError(line: 0, reason: "cannot read \(path)")
        }
        try self.init(text: text)
    }

    /// The identity behind an `Authorization: Bearer …` header value, if the token is known.
    public func identity(forAuthorization header: String?) -> TokenIdentity? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return identities[Self.digest(token)]
    }

    static func digest(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(token.utf8)))
    }
}

/// A malformed tokens file.
public struct TokenFileError: Error, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { line > 0 ? "tokens file line \(line): \(reason)" : "tokens file: \(reason)" }
}
