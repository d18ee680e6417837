internal import Foundation

/// A filtered, sorted page of the catalog. Pages follow each other through an opaque cursor (keyset pagination:
/// stable under concurrent inserts, and as fast on page 1,000 as on page 1).
public struct CheckpointQuery: Sendable, Equatable {
    /// Sortable columns, by their API name.
    public enum SortKey: String, Sendable, CaseIterable {
        case uploaded, created, container, namespace, pod, engine, node, image, size

        var column: String {
            switch self {
            case .uploaded: "uploaded_at"
            case .created: "coalesce(created, '')"
            case .container: "container_name"
            case .namespace: "coalesce(pod_namespace, '')"
            case .pod: "coalesce(pod_name, '')"
            case .engine: "engine"
            case .node: "coalesce(source_node, '')"
            case .image: "coalesce(image, '')"
            case .size: "size"
            }
        }
    }

    public var namespace: String?
    public var pod: String?
    public var container: String?
    public var engine: String?
    public var node: String?
    public var image: String?
    /// `clean`, `warnings`, `errors` or `unknown`.
    public var validationState: String?
    /// Only checkpoints uploaded at or after this RFC 3339 time.
    public var uploadedAfter: String?
    /// Only checkpoints uploaded before this RFC 3339 time.
    public var uploadedBefore: String?
    /// Words that must all appear in the name, ID, pod, namespace, image, node, engine, IPs or labels.
    public var text: String?
    /// Labels that must be set to these values.
    public var labels: [String: String] = [:]
    public var sort: SortKey = .uploaded
    public var descending = true
    public var limit = 50
    public var cursor: String?

    public static let maximumLimit = 1000
    /// A filtered list counts its matches up to this many; past it, `total` is this and `totalExact` false.
    public static let countCap = 10_000

    public init() {}
}

/// One page of results.
public struct CheckpointPage: Sendable {
    public var items: [CheckpointRecord]
    /// Pass as `cursor` to get the next page; nil on the last page.
    public var nextCursor: String?
    /// How many checkpoints match the filters, over all pages (at most `CheckpointQuery.countCap` for a filtered
    /// list: see `totalExact`).
    public var total: Int
    /// False when a filtered list matched more than `countCap` checkpoints and `total` is that cap.
    public var totalExact: Bool
}

/// One page of results as the API's JSON text, one string per checkpoint.
public struct CheckpointSummaryPage: Sendable {
    public var items: [String]
    public var nextCursor: String?
    public var total: Int
    public var totalExact: Bool
}

/// The position after the last row of a page: its sort value and ID, base64url JSON.
struct PageCursor: Codable, Equatable {
    var sort: String
    var descending: Bool
    var text: String?
    var number: Int64?
    var id: String

    func encoded() -> String {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init(sort: String, descending: Bool, text: String?, number: Int64?, id: String) {
        self.sort = sort
        self.descending = descending
        self.text = text
        self.number = number
        self.id = id
    }

    init(decoding text: String) throws {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard text.count <= 4096, let data = Data(base64Encoded: base64),
              let cursor = try? JSONDecoder().decode(PageCursor.self, from: data)
        else {
            throw CatalogError(.invalidQuery, "the cursor is not one this server handed out")
        }
        self = cursor
    }
}
