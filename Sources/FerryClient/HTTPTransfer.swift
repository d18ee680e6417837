internal import CCurl
public import Foundation

/// One HTTP request as Ferry's clients send it (the CLI, agents, the service calling agents).
public struct TransferRequest: Sendable {
    public enum Body: Sendable {
        case none
        case data(Data)
        /// A file streamed from disk (archives of many GiB), with `Expect: 100-continue` so that a refusal
        /// (401, 413) comes before the bytes are sent.
        case file(String)
    }

    public var method: String
    public var url: URL
    /// Sent in this order; names as given.
    public var headers: [(name: String, value: String)]
    public var body: Body
    /// Seconds for the whole exchange; nil for none (archive transfers), where `stallTimeout` applies instead.
    public var timeout: TimeInterval?
    /// Seconds without a byte moving in either direction after which the transfer is given up.
    public var stallTimeout: TimeInterval = 300
    /// The most body bytes kept in memory when the caller takes no `onBody` handler: a larger answer fails.
    public var maximumBodyBytes = 64 << 20
    /// For https: the CA bundle the server's certificate must chain to (nil: the system's), and a client
    /// certificate and key (PEM files) to present.
    public var tls = TLSFiles()

    public struct TLSFiles: Sendable {
        public var certificateAuthority: String?
        public var clientCertificate: String?
        public var clientKey: String?
        public init(certificateAuthority: String? = nil, clientCertificate: String? = nil, clientKey: String? = nil) {
            self.certificateAuthority = certificateAuthority
            self.clientCertificate = clientCertificate
            self.clientKey = clientKey
        }
    }

    public init(method: String, url: URL, headers: [(name: String, value: String)] = [], body: Body = .none,
                timeout: TimeInterval? = 30) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll { $0.name.lowercased() == name.lowercased() }
        headers.append((name, value))
    }
}

public struct TransferResponse: Sendable {
    public var status: Int
    /// Header names lowercased; a repeated header keeps its last value.
    public var headers: [String: String]
    /// The body, unless an `onBody` handler took it.
    public var body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A transfer that did not complete: the server was unreachable, the connection broke, a time limit passed, a
/// handler refused the bytes, or it was cancelled.
public struct TransferError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var cancelled: Bool
    public var description: String { message }
}

/// Lets another thread end a transfer in flight. libcurl asks it on every piece of data and at least once a
/// second while the connection is quiet, so a cancel takes effect within about a second.
public final class TransferCancellation: @unchecked Sendable {
    // @unchecked Sendable invariant: `cancelled` is only touched with `lock` held.
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    public var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }
}

/// HTTP/1.1 over libcurl's easy interface, one exchange at a time on the calling thread, which blocks in
/// `poll`. (FoundationNetworking's URLSession on Linux keeps a core busy for as long as an answer takes:
/// measured, a 3 s wait cost 2.5 s of CPU, which a migration's long polls paid on a 2-core node.)
public enum HTTPTransfer {
    /// Sends `request` and waits for the whole answer.
    /// - Parameters:
    ///   - onResponse: called once the final status and headers are in, before any body byte; return false to
    ///     stop there (the transfer then fails, cancelled).
    ///   - onBody: takes the body as it arrives instead of keeping it; return false to fail the transfer.
    ///   - onUpload: bytes of the request body sent so far, and the total.
    public static func perform(_ request: TransferRequest, cancellation: TransferCancellation? = nil,
                               onResponse: ((Int, [String: String]) -> Bool)? = nil,
                               onBody: ((UnsafeRawBufferPointer) -> Bool)? = nil,
                               onUpload: ((Int64, Int64) -> Void)? = nil) throws(TransferError) -> TransferResponse {
        _ = globalInitialization
        guard let handle = curl_easy_init() else {
            throw TransferError(message: "cannot start an HTTP transfer (libcurl)", cancelled: false)
        }
        defer { curl_easy_cleanup(handle) }
        let transfer = Transfer(cancellation: cancellation, onResponse: onResponse, onBody: onBody, onUpload: onUpload,
                                maximumBodyBytes: request.maximumBodyBytes)
        defer { transfer.close() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code = errorBuffer.withUnsafeMutableBufferPointer { errorPointer -> CURLcode in
            let context = Unmanaged.passUnretained(transfer).toOpaque()
            var setup = CURLE_OK
            func set(_ result: CURLcode) { if setup == CURLE_OK { setup = result } }
            set(ferry_curl_set_string(handle, CURLOPT_URL, request.url.absoluteString))
            set(ferry_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
            set(ferry_curl_set_long(handle, CURLOPT_NOSIGNAL, 1))
            set(ferry_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0))
            set(ferry_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress))
            if let file = request.tls.certificateAuthority { set(ferry_curl_set_string(handle, CURLOPT_CAINFO, file)) }
            if let file = request.tls.clientCertificate { set(ferry_curl_set_string(handle, CURLOPT_SSLCERT, file)) }
            if let file = request.tls.clientKey { set(ferry_curl_set_string(handle, CURLOPT_SSLKEY, file)) }
            if let timeout = request.timeout {
                set(ferry_curl_set_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(timeout)))
            }
            set(ferry_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(min(request.timeout ?? 30, 30))))
            set(ferry_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1))
            set(ferry_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Int(request.stallTimeout.rounded(.up)))))

            set(ferry_curl_set_data_callback(handle, CURLOPT_HEADERFUNCTION, { buffer, size, count, context in
                Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                    .header(UnsafeRawBufferPointer(start: buffer, count: size * count))
            }))
            set(ferry_curl_set_pointer(handle, CURLOPT_HEADERDATA, context))
            set(ferry_curl_set_data_callback(handle, CURLOPT_WRITEFUNCTION, { buffer, size, count, context in
                Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                    .write(UnsafeRawBufferPointer(start: buffer, count: size * count))
            }))
            set(ferry_curl_set_pointer(handle, CURLOPT_WRITEDATA, context))
            set(ferry_curl_set_long(handle, CURLOPT_NOPROGRESS, 0))
            set(ferry_curl_set_progress_callback(handle, { context, _, _, uploadTotal, uploadNow in
                Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().progress(uploadNow, uploadTotal)
            }))
            set(ferry_curl_set_pointer(handle, CURLOPT_XFERINFODATA, context))

            var expectContinue = false
            switch request.body {
            case .none:
                switch request.method {
                case "GET": break
                case "HEAD": set(ferry_curl_set_long(handle, CURLOPT_NOBODY, 1))
                default: set(ferry_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method))
                }
            case .data(let data):
                set(ferry_curl_set_long(handle, CURLOPT_POST, 1))
                set(ferry_curl_set_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(data.count)))
                data.withUnsafeBytes { bytes in
                    // COPYPOSTFIELDS copies; an empty body still needs a non-null pointer.
                    let empty: CChar = 0
                    if let base = bytes.baseAddress {
                        set(ferry_curl_set_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base)))
                    } else {
                        withUnsafePointer(to: empty) { set(ferry_curl_set_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0))) }
                    }
                }
                if request.method != "POST" { set(ferry_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)) }
            case .file(let path):
                guard let size = transfer.openUpload(path) else {
                    setup = CURLE_READ_ERROR
                    break
                }
                expectContinue = true
                set(ferry_curl_set_long(handle, CURLOPT_POST, 1))
                set(ferry_curl_set_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(size)))
                set(ferry_curl_set_data_callback(handle, CURLOPT_READFUNCTION, { buffer, size, count, context in
                    Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                        .read(UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
                }))
                set(ferry_curl_set_pointer(handle, CURLOPT_READDATA, context))
                if request.method != "POST" { set(ferry_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)) }
            }
            for (name, value) in request.headers {
                headerList = curl_slist_append(headerList, "\(name): \(value)")
            }
            // libcurl asks for 100-continue on its own for bodies over 1 KiB; only streamed files want the wait.
            if !expectContinue { headerList = curl_slist_append(headerList, "Expect:") }
            set(ferry_curl_set_pointer(handle, CURLOPT_HTTPHEADER, headerList))
            guard setup == CURLE_OK else { return setup }
            return curl_easy_perform(handle)
        }

        if let failure = transfer.failure {
            throw TransferError(message: failure, cancelled: false)
        }
        guard code == CURLE_OK else {
            let cancelled = transfer.wasCancelled
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransferError(message: cancelled ? "the transfer was cancelled" : reason, cancelled: cancelled)
        }
        var status = 0
        if transfer.status == 0 {
            var value = 0
            _ = ferry_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &value)
            status = value
        } else {
            status = transfer.status
        }
        return TransferResponse(status: status, headers: transfer.headers, body: transfer.body)
    }

    private static func milliseconds(_ seconds: TimeInterval) -> Int {
        max(1, Int((seconds * 1000).rounded(.up)))
    }

    /// libcurl's global state, set up once before the first transfer (curl_global_init is not thread-safe).
    private static let globalInitialization: Void = {
        _ = curl_global_init(Int(CURL_GLOBAL_ALL))
    }()
}

/// One transfer's state, touched only from libcurl's callbacks on the calling thread.
private final class Transfer {
    let cancellation: TransferCancellation?
    let onResponse: ((Int, [String: String]) -> Bool)?
    let onBody: ((UnsafeRawBufferPointer) -> Bool)?
    let onUpload: ((Int64, Int64) -> Void)?
    let maximumBodyBytes: Int
    var status = 0
    var headers: [String: String] = [:]
    var body = Data()
    /// Set when a handler or a limit ended the transfer, with the reason.
    var failure: String?
    var wasCancelled = false
    private var upload: Int32 = -1
    private var responseDelivered = false

    init(cancellation: TransferCancellation?, onResponse: ((Int, [String: String]) -> Bool)?,
         onBody: ((UnsafeRawBufferPointer) -> Bool)?, onUpload: ((Int64, Int64) -> Void)?, maximumBodyBytes: Int) {
        self.cancellation = cancellation
        self.onResponse = onResponse
        self.onBody = onBody
        self.onUpload = onUpload
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Opens the file to stream; its size, or nil (and `failure` set) when it cannot be read.
    func openUpload(_ path: String) -> Int64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        var info = stat()
        guard fd >= 0, fstat(fd, &info) == 0 else {
            if fd >= 0 { Foundation.close(fd) }
            failure = "cannot read \(path)"
            return nil
        }
        upload = fd
        return Int64(info.st_size)
    }

    func close() {
        if upload >= 0 { Foundation.close(upload) }
        upload = -1
    }

    /// One header line; a status line starts a new block (a `100 Continue` comes before the real answer), and
    /// the empty line ends it.
    func header(_ line: UnsafeRawBufferPointer) -> Int {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            let parts = text.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = [:]
        } else if text.isEmpty {
            if status >= 200 && !responseDelivered {
                responseDelivered = true
                if let onResponse, !onResponse(status, headers) {
                    wasCancelled = true
                    return 0
                }
            }
        } else if let colon = text.firstIndex(of: ":") {
            let name = text[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return line.count
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        if let onBody {
            return onBody(bytes) ? bytes.count : 0
        }
        guard body.count + bytes.count <= maximumBodyBytes else {
            failure = "the answer is larger than \(maximumBodyBytes) bytes"
            return 0
        }
        body.append(contentsOf: bytes)
        return bytes.count
    }

    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        while true {
            let count = Foundation.read(upload, base, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR {
                failure = "cannot read the file being uploaded: \(String(cString: strerror(errno)))"
                return Int(CURL_READFUNC_ABORT)
            }
        }
    }

    func progress(_ uploaded: curl_off_t, _ total: curl_off_t) -> Int32 {
        if cancellation?.isCancelled == true {
            wasCancelled = true
            return 1
        }
        if upload >= 0, total > 0 { onUpload?(Int64(uploaded), Int64(total)) }
        return 0
    }
}
