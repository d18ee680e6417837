internal import CMicroHTTPD
import Foundation

/// One libmicrohttpd connection that its request may take off MHD's event loop (`suspend`) while it waits for
/// something that happens on another thread (its handler's answer, room in the upload buffers, a timer), and that
/// any thread may put back (`wake`).
///
/// MHD's rules this type keeps:
/// - suspend only from inside the access handler, on the connection's own worker thread;
/// - resume only a connection that is suspended, and never one MHD has freed (after the completed callback);
/// - a suspended connection does not time out and is not read, and MHD_stop_daemon must not run while one is
///   suspended (it panics), so `RequestTracker` counts them and shutdown waits for the count to reach zero.
///
/// A wake that comes before the suspend it was meant to end (the handler answered between the access handler's
/// check and its suspend) is remembered, and that suspend is then undone at once, so no wake-up is ever lost.
/// Spurious wake-ups are harmless: the access handler re-checks its conditions on every call.
final class SuspendedConnection: @unchecked Sendable {
    // @unchecked Sendable invariant: `state` and `wakePending` are only touched with `lock` held, and the MHD
    // suspend/resume calls are made with it held too, so a resume can never race MHD freeing the connection
    // (`closed` is set, under the lock, by the completed callback before MHD frees it).
    private enum State {
        case running
        case suspended
        case closed
    }

    private let lock = NSLock()
    private let connection: OpaquePointer
    private let tracker: RequestTracker
    private var state = State.running
    private var wakePending = false

    init(_ connection: OpaquePointer, tracker: RequestTracker) {
        self.connection = connection
        self.tracker = tracker
    }

    /// Takes the connection off MHD's event loop until `wake()`. Call only from the access handler, which must then
    /// return MHD_YES (leaving unconsumed body bytes in `*upload_data_size` for the call after the wake).
    func suspend() {
        lock.lock()
        defer { lock.unlock() }
        guard case .running = state else { return }
        if wakePending {
            // The wake-up this suspend waits for has already happened. Suspend and resume at once rather than not
            // suspend: a resumed connection is called again on MHD's next loop, one left running only on its next
            // socket event.
            wakePending = false
            MHD_suspend_connection(connection)
            MHD_resume_connection(connection)
            return
        }
        // Refused while the server stops: the connection stays on the loop and is closed with the daemon.
        guard tracker.connectionSuspended() else { return }
        state = .suspended
        MHD_suspend_connection(connection)
    }

    /// Puts the connection back on MHD's event loop (MHD then calls the access handler again). Any thread; never
    /// blocks for long.
    func wake() {
        lock.lock()
        defer { lock.unlock() }
        switch state {
        case .suspended:
            state = .running
            MHD_resume_connection(connection)
            tracker.connectionResumed()
        case .running:
            wakePending = true
        case .closed:
            break
        }
    }

    /// Wakes the connection after `seconds` on the server's timer queue (a deadline for the access handler).
    func wake(after seconds: Double, on queue: DispatchQueue) {
        queue.asyncAfter(deadline: .now() + seconds) { [self] in wake() }
    }

    /// The completed callback ran: MHD is about to free the connection. Later wakes do nothing.
    func close() {
        lock.lock()
        defer { lock.unlock() }
        if case .suspended = state { tracker.connectionResumed() }
        state = .closed
    }
}
