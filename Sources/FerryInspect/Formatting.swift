internal import Foundation

/// Number formats that match checkpointctl's output.
public enum Formatting {
    /// Binary sizes with one decimal and IEC units: `174.0 KiB`, `0 B`. (Socket buffers use checkpointctl's `KB`
    /// labels: `OpenSocket.sendBufferText`.)
    public static func binarySize(_ bytes: Int64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes)
        var unit = -1
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(oneDecimal(value)) \(units[unit])"
    }

    /// A duration in microseconds with five significant digits, as checkpointctl prints CRIU's dump times:
    /// `967 µs`, `100.98 ms`, `81.781 ms`, `1.3 ms`, `2.5 s`.
    public static func microseconds(_ value: UInt64) -> String {
        if value < 1000 { return "\(value) µs" }
        if value < 1_000_000 { return "\(significant(Double(value) / 1000)) ms" }
        return "\(significant(Double(value) / 1_000_000)) s"
    }

    /// `%.1f` and `%.5g` as Go's fmt prints them: both round the exact binary value, as C's printf does.
    static func oneDecimal(_ value: Double) -> String { String(format: "%.1f", value) }
    static func significant(_ value: Double) -> String { String(format: "%.5g", value) }
}
