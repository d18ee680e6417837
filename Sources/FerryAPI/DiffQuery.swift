/// The query of `GET /api/v1/checkpoints/{a}/diff/{b}`: checkpointctl's `diff` flags as booleans, and the format.
/// Defined once for the client that sends it and the service that reads it.
public enum DiffQuery {
    /// `files`, `sockets`, `ps_tree_cmd`, `ps_tree_env`, `show_unchanged`: each `true` or `false` (default).
    public static let flags = ["files", "sockets", "ps_tree_cmd", "ps_tree_env", "show_unchanged"]
    /// `json` (default) or `tree`, checkpointctl's text view as `text/plain`.
    public static let format = "format"

    /// The query for these flags; flags left false are left out.
    public static func parameters(files: Bool, sockets: Bool, commandLines: Bool, environment: Bool,
                                  showUnchanged: Bool, tree: Bool) -> [String: String] {
        var query: [String: String] = [:]
        for (name, on) in zip(flags, [files, sockets, commandLines, environment, showUnchanged]) where on {
            query[name] = "true"
        }
        if tree { query[format] = "tree" }
        return query
    }
}
