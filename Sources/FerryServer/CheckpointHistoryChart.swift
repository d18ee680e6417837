import FerryAPI
import FerryInspect
import Foundation

/// A container's checkpoints over time as a small inline SVG, rendered on the server (no script): x is the upload
/// time, and two series share the y axis in bytes, the archive's size and its memory pages. A pinned checkpoint
/// has a ring around its points; a deleted one (from the deletion records, which keep its size but not its memory)
/// is a cross on the size series. Every checkpoint is one `<g class="checkpoint-point">` with its ID and state
/// in `data-` attributes and a `<title>` for the tooltip; every text from the catalog is escaped.
struct CheckpointHistoryChart {
    /// One checkpoint of the container.
    struct Point {
        var id: String
        var uploadedAt: String
        var size: Int64
        /// Nil for a deleted checkpoint (the deletion record has no memory size).
        var memoryPages: Int64?
        var pinned = false
        var deleted = false
        /// The checkpoint whose page shows the chart.
        var current = false
    }

    var points: [Point]

    static let width = 640.0
    static let height = 220.0
    private static let left = 64.0, right = 16.0, top = 16.0, bottom = 40.0

    /// The SVG element, or a short note when there is nothing to draw.
    func svg() -> String {
        guard !points.isEmpty else { return "<p class=\"muted\">No checkpoints of this container.</p>" }
        let sorted = points.sorted { ($0.uploadedAt, $0.id) < ($1.uploadedAt, $1.id) }
        let times = sorted.map { WireTime.date($0.uploadedAt)?.timeIntervalSince1970 }
        let earliest = times.compactMap { $0 }.min() ?? 0
        let latest = times.compactMap { $0 }.max() ?? 0
        let maximum = Double(max(1, sorted.map { max($0.size, $0.memoryPages ?? 0) }.max() ?? 1))
        let plotWidth = Self.width - Self.left - Self.right
        let plotHeight = Self.height - Self.top - Self.bottom

        func x(_ index: Int) -> Double {
            // Unparsable times and a single instant spread the points evenly instead.
            guard let time = times[index], latest > earliest else {
                return Self.left + (sorted.count == 1 ? plotWidth / 2 : plotWidth * Double(index) / Double(sorted.count - 1))
            }
            return Self.left + plotWidth * (time - earliest) / (latest - earliest)
        }
        func y(_ bytes: Int64) -> Double { Self.top + plotHeight * (1 - Double(bytes) / maximum) }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"history-chart\" class=\"history-chart\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" role=\"img\" aria-label=\"Checkpoints of this container over time: archive size and memory pages\">"
        out += "<rect x=\"\(number(Self.left))\" y=\"\(number(Self.top))\" width=\"\(number(plotWidth))\" height=\"\(number(plotHeight))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        // Axes: the largest value at the top, zero at the bottom, the first and last upload under the x axis.
        out += "<text x=\"\(number(Self.left - 4))\" y=\"\(number(Self.top + 4))\" text-anchor=\"end\" font-size=\"10\">\(escape(Formatting.binarySize(Int64(maximum))))</text>"
        out += "<text x=\"\(number(Self.left - 4))\" y=\"\(number(Self.top + plotHeight))\" text-anchor=\"end\" font-size=\"10\">0</text>"
        out += "<text x=\"\(number(Self.left))\" y=\"\(number(Self.height - Self.bottom + 14))\" font-size=\"10\">\(escape(sorted.first!.uploadedAt))</text>"
        if sorted.count > 1 {
            out += "<text x=\"\(number(Self.width - Self.right))\" y=\"\(number(Self.height - Self.bottom + 14))\" text-anchor=\"end\" font-size=\"10\">\(escape(sorted.last!.uploadedAt))</text>"
        }
        let live = sorted.indices.filter { !sorted[$0].deleted }
        out += "<polyline class=\"series-size\" fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"1.5\" points=\"\(sorted.indices.map { "\(number(x($0))),\(number(y(sorted[$0].size)))" }.joined(separator: " "))\"/>"
        out += "<polyline class=\"series-memory\" fill=\"none\" stroke=\"#c05621\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\"\(live.map { "\(number(x($0))),\(number(y(sorted[$0].memoryPages ?? 0)))" }.joined(separator: " "))\"/>"
        for (index, point) in sorted.enumerated() {
            let px = number(x(index)), sizeY = number(y(point.size))
            var title = "\(point.id.prefix(12)) uploaded \(point.uploadedAt): archive \(Formatting.binarySize(point.size))"
            if let memory = point.memoryPages { title += ", memory pages \(Formatting.binarySize(memory))" }
            if point.pinned { title += ", pinned" }
            if point.deleted { title += ", deleted" }
            out += "<g class=\"checkpoint-point\" data-id=\"\(escape(point.id))\" data-pinned=\"\(point.pinned)\" data-deleted=\"\(point.deleted)\"\(point.current ? " data-current=\"true\"" : "")>"
            out += "<title>\(escape(title))</title>"
            if point.deleted {
                out += "<path class=\"deleted-marker\" d=\"M\(number(x(index) - 4)) \(number(y(point.size) - 4)) l8 8 m0 -8 l-8 8\" stroke=\"#c53030\" stroke-width=\"2\"/>"
            } else {
                out += "<circle class=\"size-point\" cx=\"\(px)\" cy=\"\(sizeY)\" r=\"\(point.current ? 5 : 3.5)\" fill=\"#2b6cb0\"/>"
                out += "<rect class=\"memory-point\" x=\"\(number(x(index) - 3))\" y=\"\(number(y(point.memoryPages ?? 0) - 3))\" width=\"6\" height=\"6\" fill=\"#c05621\"/>"
            }
            if point.pinned {
                out += "<circle class=\"pin-marker\" cx=\"\(px)\" cy=\"\(sizeY)\" r=\"8\" fill=\"none\" stroke=\"#2f855a\" stroke-width=\"2\"/>"
            }
            out += "</g>"
        }
        // The legend, under the x axis labels.
        let legendY = number(Self.height - 8)
        out += "<g class=\"legend\" font-size=\"11\">"
        out += "<circle cx=\"\(number(Self.left + 4))\" cy=\"\(number(Self.height - 12))\" r=\"3.5\" fill=\"#2b6cb0\"/><text x=\"\(number(Self.left + 12))\" y=\"\(legendY)\">archive size</text>"
        out += "<rect x=\"\(number(Self.left + 101))\" y=\"\(number(Self.height - 15))\" width=\"6\" height=\"6\" fill=\"#c05621\"/><text x=\"\(number(Self.left + 112))\" y=\"\(legendY)\">memory pages</text>"
        out += "<circle cx=\"\(number(Self.left + 214))\" cy=\"\(number(Self.height - 12))\" r=\"6\" fill=\"none\" stroke=\"#2f855a\" stroke-width=\"2\"/><text x=\"\(number(Self.left + 224))\" y=\"\(legendY)\">pinned</text>"
        out += "<path d=\"M\(number(Self.left + 280)) \(number(Self.height - 16)) l8 8 m0 -8 l-8 8\" stroke=\"#c53030\" stroke-width=\"2\"/><text x=\"\(number(Self.left + 294))\" y=\"\(legendY)\">deleted</text>"
        out += "</g></svg>"
        return out
    }
}
