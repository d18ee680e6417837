/// Why an `HTTPServer` could not start.
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable reason.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Another socket is bound to the address and port (EADDRINUSE).
        public static let addressInUse = Code(rawValue: "ADDRESS_IN_USE")
        /// The address is not one of this machine's (EADDRNOTAVAIL).
        public static let addressNotAvailable = Code(rawValue: "ADDRESS_NOT_AVAILABLE")
        /// The host is neither an IP literal nor a name that resolves.
        public static let invalidAddress = Code(rawValue: "INVALID_ADDRESS")
        /// Binding needs privileges this process lacks, e.g. a port below 1024 (EACCES).
        public static let permissionDenied = Code(rawValue: "PERMISSION_DENIED")
        /// socket/bind/listen failed for another reason (see `systemError`).
        public static let bindFailed = Code(rawValue: "BIND_FAILED")
        /// libmicrohttpd refused to start (threads, resources); its own message goes to the server's log.
        public static let startFailed = Code(rawValue: "START_FAILED")
        /// `start()` was called on a server that is running or was shut down; a server starts once.
        public static let alreadyStarted = Code(rawValue: "ALREADY_STARTED")
    }

    public var code: Code
    public var message: String
    /// The `errno` behind the failure, when there is one.
    public var systemError: Int32?

    public init(code: Code, message: String, systemError: Int32? = nil) {
        self.code = code
        self.message = message
        self.systemError = systemError
    }

    public var description: String { "\(code): \(message)" }
}
