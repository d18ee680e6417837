/// What verifying a checkpoint's provenance found wrong, with a stable code the CLI prints, the agent puts in a
/// failed job and the tests branch on. Never rename one.
public struct ProvenanceError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No signature from the expected key verifies over the statement (altered statement or signature, wrong
        /// payload type, or no statement at all).
        public static let signatureInvalid = Code(rawValue: "SIGNATURE_INVALID")
        /// The statement is signed by a key other than the one trusted (the service's key changed, or the key given
        /// is not the one that signed).
        public static let keyMismatch = Code(rawValue: "KEY_MISMATCH")
        /// The archive's bytes do not hash to the digest the statement signs (or their size differs).
        public static let digestMismatch = Code(rawValue: "DIGEST_MISMATCH")
        /// Statements out of order, missing, duplicated, or naming a previous statement that is not the one before.
        public static let chainBroken = Code(rawValue: "CHAIN_BROKEN")
        /// A key file or statement that cannot be read or decoded.
        public static let invalidKey = Code(rawValue: "INVALID_KEY")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code)]" }
}
