internal import Foundation

/// The few elements Ferry reads from S3's XML answers, found by tag name. S3's documents are flat and
/// machine-written, so a tag scan is enough; a full XML parser would pull in libxml2 through FoundationXML.
enum XMLText {
    /// The text of the first `<name>` element, entities decoded.
    static func first(_ name: String, in document: Data) -> String? {
        first(name, in: String(decoding: document, as: UTF8.self))
    }

    static func first(_ name: String, in text: String) -> String? {
        all(name, in: text).first.map(unescape)
    }

    /// The raw contents of every `<name>` element, in order.
    static func all(_ name: String, in document: Data) -> [String] {
        all(name, in: String(decoding: document, as: UTF8.self))
    }

    static func all(_ name: String, in text: String) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "<\(name)>") {
            guard let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) else { break }
            found.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return found
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
