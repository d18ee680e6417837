import Foundation

/// SIGTERM and SIGINT for a long-running process (`ferry serve`, `ferry agent`): ignored as signals (so they
/// cannot kill the process mid-write) and delivered instead to a dispatch source, so that the process can stop
/// accepting, finish what is in flight and exit cleanly. SIGPIPE is ignored: a client that hangs up must not
/// kill the process.
public final class TerminationSignals: @unchecked Sendable {
    private let received = DispatchSemaphore(value: 0)
    /// Set up once in `init`, cancelled once in `deinit`.
    private var sources: [any DispatchSourceSignal] = []

    /// Starts catching the signals; call before anything can be interrupted.
    public init() {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let queue = DispatchQueue(label: "ferry.signals")
        sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [received] in received.signal() }
            source.resume()
            return source
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// Blocks the calling thread until SIGTERM or SIGINT arrives.
    public func wait() {
        received.wait()
    }
}
