import FerryAPI
import FerryCatalog
import FerryHTTP
import FerryInspect
import FerryProvenance
import Foundation

/// The browser pages, rendered on the server so the listing works with JavaScript off: `/` lists checkpoints
/// (sort, filter, paging through links and a GET form), `/checkpoints/{id}` shows one with its container's history,
/// `/checkpoints/{a}/diff/{b}` compares two (`WebPages+Diff.swift`). Templates and styles come from `web/`.
struct WebPages: Sendable {
    let context: FerryServiceContext
    let api: CheckpointAPI

    func register(in router: inout Router) {
        router.add("GET", "/", fromMemory: { request, _ in cachedListing(request) }) { request, _, _ in try listingPage(request) }
        router.add("GET", "/checkpoints/{id}") { request, parameters, _ in
            try page(request) { try detail(request, id: parameters["id"] ?? "") }
        }
        registerDiff(in: &router)
        router.add("GET", "/migrations") { request, _, _ in try page(request) { try migrations(request) } }
        router.add("GET", "/static/{file}", inline: true) { request, parameters, _ in try staticFile(request, name: parameters["file"] ?? "") }
        router.add("GET", "/login", inline: true) { _, _, _ in html(title: "Sign in", content: loginForm(error: nil)) }
        router.add("POST", "/login") { _, _, body in try login(body: body) }
    }

    // MARK: Pages

    /// Renders a page; a missing or refused token sends the browser to the sign-in form instead of JSON.
    func page(_ request: HTTPRequest, _ render: () throws -> (String, String)) throws -> HTTPResponse {
        do {
            _ = try api.authorize(request, .read)
            let (title, content) = try render()
            return html(title: title, content: content)
        } catch let error as HTTPError where error.status == 401 || error.status == 403 {
            return HTTPResponse(status: 303, headers: [("Location", "/login")], body: .empty)
        } catch let error as HTTPError where error.status == 404 {
            var response = html(title: "Not found", content: "<h1>Not found</h1><p>\(escape(error.message))</p><p><a href=\"/\">All checkpoints</a></p>")
            response.status = 404
            return response
        }
    }

    /// The list page from the cache, on the worker thread; nil when it must be rendered (or the browser must sign in).
    private func cachedListing(_ request: HTTPRequest) -> HTTPResponse? {
        do {
            try api.authorize(request, .read)
        } catch {
            return nil
        }
        let key = GenerationCache<[UInt8]>.key(request.query)
        return context.pageCache.value(for: key, generation: context.catalog.generation).map(html(body:))
    }

    private func listingPage(_ request: HTTPRequest) throws -> HTTPResponse {
        // Read before the query: a write that lands meanwhile makes this entry stale, never a stale one current.
        let generation = context.catalog.generation
        let response = try page(request) { try listing(request) }
        if response.status == 200, case .bytes(let body) = response.body {
            context.pageCache.store(body, for: GenerationCache<[UInt8]>.key(request.query), generation: generation)
        }
        return response
    }

    private func listing(_ request: HTTPRequest) throws -> (String, String) {
        var query = try CheckpointAPI.query(from: request)
        if request.query["limit"] == nil { query.limit = 50 }
        let page = try api.catalog { try context.catalog.list(query) }
        let parameters = request.query

        let total = page.totalExact ? "\(page.total)" : "\(page.total)+"
        var out = "<h1>Checkpoints <span class=\"muted\">(\(total))</span></h1>\n"
        out += "<form class=\"filters\" method=\"get\" action=\"/\">\n"
        out += field("q", "Search", parameters["q"], placeholder: "name, ID, image, IP, label")
        out += field("namespace", "Namespace", parameters["namespace"])
        out += field("pod", "Pod", parameters["pod"])
        out += field("node", "Node", parameters["node"])
        out += "<label>Engine<select name=\"engine\"><option value=\"\">any</option>"
        for engine in ["Podman", "CRI-O", "containerd"] {
            out += "<option\(parameters["engine"] == engine ? " selected" : "")>\(engine)</option>"
        }
        out += "</select></label>\n"
        out += "<label>Validation<select name=\"validation\"><option value=\"\">any</option>"
        for state in ["clean", "warnings", "errors"] {
            out += "<option\(parameters["validation"] == state ? " selected" : "")>\(state)</option>"
        }
        out += "</select></label>\n"
        if let sort = parameters["sort"] { out += "<input type=\"hidden\" name=\"sort\" value=\"\(escape(sort))\">" }
        if let order = parameters["order"] { out += "<input type=\"hidden\" name=\"order\" value=\"\(escape(order))\">" }
        out += "<button type=\"submit\">Filter</button> <a href=\"/\">Reset</a></form>\n"

        guard !page.items.isEmpty else {
            return ("Checkpoints", out + "<div class=\"empty\">No checkpoints match. Upload one with <code>ferry push ARCHIVE</code>.</div>")
        }
        out += "<table id=\"checkpoints\"><thead><tr>"
        let columns: [(String, CheckpointQuery.SortKey?, Bool)] = [
            ("Container", .container, false), ("Pod / namespace", .namespace, false), ("Engine", .engine, false),
            ("Image", .image, false), ("Node", .node, false), ("Size", .size, true), ("Uploaded", .uploaded, false),
            ("Processes", nil, true), ("Validation", nil, false),
        ]
        for (title, key, numeric) in columns {
            let cls = numeric ? " class=\"num\"" : ""
            guard let key else { out += "<th\(cls)>\(title)</th>"; continue }
            let active = query.sort == key
            let nextOrder = active && query.descending ? "asc" : "desc"
            var link = parameters
            link["sort"] = key.rawValue
            link["order"] = nextOrder
            link["cursor"] = nil
            let arrow = active ? (query.descending ? " ▼" : " ▲") : ""
            out += "<th\(cls)><a href=\"/?\(queryString(link))\">\(title)\(arrow)</a></th>"
        }
        out += "</tr></thead><tbody>\n"
        for record in page.items {
            let pod = [record.podName, record.podNamespace].compactMap { $0 }.joined(separator: " / ")
            out += "<tr data-id=\"\(record.id)\">"
            out += "<td><a href=\"/checkpoints/\(record.id)\">\(escape(record.containerName))</a><br><span class=\"muted mono\">\(record.containerID.prefix(12))</span></td>"
            out += "<td>\(pod.isEmpty ? "<span class=\"muted\">—</span>" : escape(pod))</td>"
            out += "<td>\(escape(record.engine))</td>"
            out += "<td class=\"mono\">\(escape(record.image ?? ""))</td>"
            out += "<td>\(escape(record.sourceNode ?? "—"))</td>"
            out += "<td class=\"num\">\(Formatting.binarySize(record.size))</td>"
            out += "<td class=\"mono\">\(escape(record.uploadedAt))</td>"
            out += "<td class=\"num\">\(record.processCount)</td>"
            out += "<td>\(validationBadge(record))</td>"
            out += "</tr>\n"
        }
        out += "</tbody></table>\n<div class=\"pager\">"
        if parameters["cursor"] != nil {
            var first = parameters
            first["cursor"] = nil
            out += "<a href=\"/?\(queryString(first))\">« First page</a>"
        }
        if let next = page.nextCursor {
            var link = parameters
            link["cursor"] = next
            out += "<a rel=\"next\" href=\"/?\(queryString(link))\">Next page »</a>"
        }
        out += "<span class=\"muted\">\(page.items.count) of \(total) shown</span></div>"
        return ("Checkpoints", out)
    }

    private func detail(_ request: HTTPRequest, id: String) throws -> (String, String) {
        let record = try api.catalog { try context.catalog.checkpoint(id) }
        var inspectionText = try api.catalog { try context.catalog.inspection(of: record.id) }
        let identity = try? api.authorize(request, .read)
        if !SecretRedaction.allowsSecrets(identity ?? nil, tokensConfigured: !context.tokens.isEmpty) {
            inspectionText = SecretRedaction.redactedInspection(inspectionText)
        }
        let inspection = (try? JSONSerialization.jsonObject(with: Data(inspectionText.utf8))) as? [String: Any] ?? [:]
        var out = "<p><a href=\"/\">« All checkpoints</a></p>"
        out += "<h1>\(escape(record.containerName)) <span class=\"muted\">\(escape(record.engine))</span></h1>"
        out += "<div class=\"actions\"><a id=\"download\" href=\"/api/v1/checkpoints/\(record.id)/archive\">Download archive (\(Formatting.binarySize(record.size)))</a>"
        out += "<a href=\"/api/v1/checkpoints/\(record.id)\">JSON</a></div>"

        var facts: [(String, String)] = [
            ("Checkpoint ID", "<span class=\"mono\">sha256:\(record.id)</span>"),
            ("Container ID", "<span class=\"mono\">\(escape(record.containerID))</span>"),
            ("Image", escape(record.image ?? "")),
            ("Image ID", "<span class=\"mono\">\(escape(record.imageID ?? ""))</span>"),
            ("Runtime", escape(record.runtime ?? "")),
            ("Created", escape(record.created ?? "")),
            ("Checkpointed", escape(record.checkpointed ?? "not recorded")),
            ("Architecture", escape(record.architecture ?? "unknown")),
            ("Archive", "\(Formatting.binarySize(record.size)), \(escape(record.compression))"),
            ("Checkpoint size", Formatting.binarySize(record.checkpointSize)),
            ("Memory pages", Formatting.binarySize(record.memoryPagesSize)),
            ("Root FS diff", record.rootfsDiffSize.map(Formatting.binarySize) ?? "none"),
            ("Source node", escape(record.sourceNode ?? "—")),
            ("Uploaded", escape(record.uploadedAt)),
            ("Validation", validationBadge(record)),
            ("Provenance", provenance(record)),
        ]
        if let repository = record.ociRepository, CheckpointImage.layerMediaType(record.compression) != nil {
            // The registry view: what a node without an agent (Podman, or a Kubernetes Pod's image) pulls.
            let reference = "\(context.catalog.registryHost)/\(repository):\(OCIName.tag(of: record.id))"
            facts.append(("Image reference", "<span class=\"mono\" id=\"oci-reference\">\(escape(reference))</span>"))
            facts.append(("Restore with Podman", "<code id=\"pull-command\">podman pull --tls-verify=false \(escape(reference)) &amp;&amp; podman container restore \(escape(reference))</code>"))
        }
        if let pod = record.podName { facts.insert(("Pod", escape(pod)), at: 2) }
        if let namespace = record.podNamespace { facts.insert(("Namespace", escape(namespace)), at: 2) }
        if !record.labels.isEmpty {
            facts.append(("Labels", record.labels.sorted { $0.key < $1.key }.map { escape("\($0.key)=\($0.value)") }.joined(separator: ", ")))
        }
        out += "<h2>Container</h2><dl class=\"facts\" id=\"facts\">"
        for (name, value) in facts { out += "<dt>\(name)</dt><dd>\(value)</dd>" }
        out += "</dl>"

        out += try historySection(record)

        let findings = try api.catalog { try context.catalog.findings(of: record.id) }
        out += "<h2>Findings</h2>"
        if findings.isEmpty {
            out += "<p class=\"muted\" id=\"findings\">\(record.validationState == "unknown" ? "Not validated." : "No findings: the archive passed every rule.")</p>"
        } else {
            out += "<table id=\"findings\"><thead><tr><th>Severity</th><th>Code</th><th>Where</th><th>Finding</th><th>Waiver</th></tr></thead><tbody>"
            for finding in findings {
                let badge = finding.severity == "error" ? "bad" : finding.severity == "warning" ? "warn" : "none"
                out += "<tr><td><span class=\"badge \(badge)\">\(escape(finding.severity))</span></td><td class=\"mono\">\(escape(finding.code))</td>"
                out += "<td class=\"mono\">\(escape(finding.path ?? ""))</td><td>\(escape(finding.message))</td><td class=\"mono\">\(escape(finding.waiver ?? ""))</td></tr>"
            }
            out += "</tbody></table>"
        }

        out += "<h2>Networks</h2>"
        let networks = inspection["networks"] as? [[String: Any]] ?? []
        if networks.isEmpty && record.ipAddresses.isEmpty {
            out += "<p class=\"muted\">No network recorded.</p>"
        } else {
            out += "<table id=\"networks\"><thead><tr><th>Network</th><th>Interface</th><th>IP</th><th>MAC</th><th>Gateway</th></tr></thead><tbody>"
            for network in networks {
                let interfaces = network["interfaces"] as? [String: [String: Any]] ?? [:]
                for (name, interface) in interfaces.sorted(by: { $0.key < $1.key }) {
                    out += "<tr><td>\(escape(network["name"] as? String ?? ""))</td><td>\(escape(name))</td>"
                    for key in ["ip", "mac", "gateway"] { out += "<td class=\"mono\">\(escape(interface[key] as? String ?? ""))</td>" }
                    out += "</tr>"
                }
            }
            if networks.isEmpty {
                for address in record.ipAddresses { out += "<tr><td>pod</td><td></td><td class=\"mono\">\(escape(address))</td><td></td><td></td></tr>" }
            }
            out += "</tbody></table>"
        }

        out += "<h2>Process tree</h2>"
        if let tree = inspection["process_tree"] as? [String: Any] {
            let files = Dictionary(
                (inspection["file_descriptors"] as? [[String: Any]] ?? []).compactMap { entry in
                    (entry["pid"] as? Int).map { ($0, entry["open_files"] as? [[String: Any]] ?? []) }
                }, uniquingKeysWith: { first, _ in first })
            let sockets = Dictionary(
                (inspection["sockets"] as? [[String: Any]] ?? []).compactMap { entry in
                    (entry["pid"] as? Int).map { ($0, entry["open_sockets"] as? [[String: Any]] ?? []) }
                }, uniquingKeysWith: { first, _ in first })
            out += "<ul class=\"tree\" id=\"process-tree\">" + processItem(tree, files: files, sockets: sockets) + "</ul>"
        } else {
            out += "<p class=\"muted\">No process tree in this checkpoint.</p>"
        }

        if let stats = inspection["statistics"] as? [String: Any] {
            out += "<h2>CRIU dump statistics</h2><dl class=\"facts\" id=\"statistics\">"
            for (key, title, isTime) in [
                ("freezing_time", "Freezing time", true), ("frozen_time", "Frozen time", true),
                ("memdump_time", "Memdump time", true), ("memwrite_time", "Memwrite time", true),
                ("pages_scanned", "Pages scanned", false), ("pages_written", "Pages written", false),
            ] {
                let value = stats[key] as? Int ?? 0
                out += "<dt>\(title)</dt><dd>\(isTime ? Formatting.microseconds(UInt64(value)) : String(value))</dd>"
            }
            out += "</dl>"
        }

        if let mounts = inspection["mounts"] as? [[String: Any]], !mounts.isEmpty {
            out += "<h2>Mounts</h2><table id=\"mounts\"><thead><tr><th>Destination</th><th>Type</th><th>Source</th></tr></thead><tbody>"
            for mount in mounts {
                out += "<tr>" + ["destination", "type", "source"].map { "<td class=\"mono\">\(escape(mount[$0] as? String ?? ""))</td>" }.joined() + "</tr>"
            }
            out += "</tbody></table>"
        }

        if let metadata = inspection["metadata"] as? [String: Any], let annotations = metadata["annotations"] as? [String: String] {
            out += "<h2>Annotations</h2><details><summary>\(annotations.count) annotations</summary><dl class=\"facts\">"
            for (key, value) in annotations.sorted(by: { $0.key < $1.key }) {
                out += "<dt class=\"mono\">\(escape(key))</dt><dd class=\"mono\">\(escape(value))</dd>"
            }
            out += "</dl></details>"
        }
        return (record.containerName, out)
    }

    /// Nodes and migrations with their progress. Refreshes itself every 5 s while a migration is unfinished
    /// (a meta refresh: no script).
    /// A migration's phases as one bar: each phase a segment as wide as its share of the time, in the order they
    /// ran, with its name and duration in the title (CSS only, no script). `frozen` overlaps the checkpoint, so it
    /// is listed, not drawn.
    static func timeline(_ phases: [MigrationPhase]) -> String {
        let order = ["preflight", "checkpoint", "upload", "transfer", "restore", "rollback"]
        let drawn = phases.filter { order.contains($0.name) && ($0.durationMs ?? 0) >= 0 && $0.durationMs != nil }
            .sorted { (order.firstIndex(of: $0.name) ?? 99) < (order.firstIndex(of: $1.name) ?? 99) }
        guard !drawn.isEmpty else { return "<span class=\"muted\">—</span>" }
        let total = max(1, drawn.reduce(Int64(0)) { $0 + ($1.durationMs ?? 0) })
        var out = "<div class=\"timeline\" role=\"img\" aria-label=\"\(escape(drawn.map { "\($0.name) \($0.durationMs ?? 0) ms" }.joined(separator: ", ")))\">"
        for phase in drawn {
            let width = max(2.0, Double(phase.durationMs ?? 0) / Double(total) * 100)
            out += "<span class=\"phase phase-\(escape(phase.name))\" style=\"width:\(String(format: "%.1f", width))%\" "
                + "title=\"\(escape(phase.name)) \(phase.durationMs ?? 0) ms\(phase.node.map { " on \(escape($0))" } ?? "")\"></span>"
        }
        out += "</div><div class=\"timeline-legend muted\">"
        out += (drawn + phases.filter { $0.name == "frozen" }).map { "\(escape($0.name)) \($0.durationMs ?? 0) ms" }.joined(separator: " · ")
        return out + "</div>"
    }

    private func migrations(_ request: HTTPRequest) throws -> (String, String) {
        let nodes = try api.catalog { try context.catalog.nodes() }
        let migrations = try api.catalog { try context.catalog.migrations(limit: 200) }
        var out = ""
        if migrations.contains(where: { !$0.state.isTerminal }) {
            out += "<meta http-equiv=\"refresh\" content=\"5\">"
        }
        out += "<h1>Migrations <span class=\"muted\">(\(migrations.count))</span></h1>"
        if migrations.isEmpty {
            out += "<div class=\"empty\">No migrations yet. Start one with <code>ferry migrate --checkpoint ID --to NODE</code>.</div>"
        } else {
            out += "<table id=\"migrations\"><thead><tr><th>Migration</th><th>State</th><th>Checkpoint</th><th>From</th><th>To</th><th class=\"num\">Progress</th><th>Timeline</th><th>Started</th><th>Finished</th><th>Reason</th></tr></thead><tbody>"
            for migration in migrations {
                let badge: String
                switch migration.state {
                case .succeeded: badge = "ok"
                case .failed, .cancelled: badge = "bad"
                default: badge = "warn"
                }
                let percent = migration.bytesTotal > 0 ? Int(Double(migration.bytesDone) / Double(migration.bytesTotal) * 100) : 0
                out += "<tr data-migration=\"\(escape(migration.id))\" data-state=\"\(migration.state.rawValue)\">"
                out += "<td class=\"mono\">\(escape(migration.id))</td>"
                out += "<td><span class=\"badge \(badge)\">\(migration.state.rawValue)</span></td>"
                if let checkpoint = migration.checkpointID {
                    out += "<td class=\"mono\"><a href=\"/checkpoints/\(checkpoint)\">\(checkpoint.prefix(12))</a></td>"
                } else {
                    out += "<td class=\"muted\">—</td>"
                }
                let source = [migration.sourceNode, migration.sourceContainer].compactMap { $0 }.joined(separator: " / ")
                out += "<td>\(source.isEmpty ? "<span class=\"muted\">catalog</span>" : escape(source))</td>"
                out += "<td>\(escape(migration.targetNode))</td>"
                out += "<td class=\"num\"><progress max=\"100\" value=\"\(percent)\"></progress> \(percent)%</td>"
                out += "<td>\(Self.timeline(MigrationMachine.phases(migration)))</td>"
                out += "<td class=\"mono\">\(escape(migration.createdAt))</td><td class=\"mono\">\(escape(migration.finishedAt ?? ""))</td>"
                out += "<td>\(escape([migration.errorCode, migration.errorMessage].compactMap { $0 }.joined(separator: ": ")))</td></tr>"
            }
            out += "</tbody></table>"
        }
        out += "<h2>Nodes</h2>"
        if nodes.isEmpty {
            out += "<p class=\"muted\">No agent has registered. Start one with <code>ferry agent --server URL --node NAME</code>.</p>"
        } else {
            out += "<table id=\"nodes\"><thead><tr><th>Node</th><th>State</th><th>Driver</th><th>Agent</th><th>Last heartbeat</th></tr></thead><tbody>"
            for node in nodes {
                let up = context.nodes.isUp(node)
                out += "<tr><td>\(escape(node.name))</td><td><span class=\"badge \(up ? "ok" : "bad")\">\(up ? "up" : "down")</span></td>"
                out += "<td>\(escape(node.driver ?? ""))</td><td class=\"mono\">\(escape(node.agentURL))</td><td class=\"mono\">\(escape(node.lastSeenAt))</td></tr>"
            }
            out += "</tbody></table>"
        }
        return ("Migrations", out)
    }

    /// One process with its files and sockets, and its children nested below.
    private func processItem(_ process: [String: Any], files: [Int: [[String: Any]]], sockets: [Int: [[String: Any]]]) -> String {
        let pid = process["pid"] as? Int ?? 0
        let command = (process["cmdline"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? process["command"] as? String ?? ""
        var out = "<li data-pid=\"\(pid)\"><span class=\"pid\">[\(pid)]</span> <span class=\"mono\">\(escape(command))</span>"
        if let state = process["task_state"] as? String, state != "Alive" { out += " <span class=\"badge warn\">\(escape(state))</span>" }
        if let open = files[pid], !open.isEmpty {
            out += "<details><summary>\(open.count) open file\(open.count == 1 ? "" : "s")</summary><ul>"
            for file in open {
                out += "<li class=\"mono\">[\(escape(file["fd"] as? String ?? ""))] \(escape(file["path"] as? String ?? ""))</li>"
            }
            out += "</ul></details>"
        }
        if let open = sockets[pid], !open.isEmpty {
            out += "<details open><summary>\(open.count) socket\(open.count == 1 ? "" : "s")</summary><ul>"
            for socket in open {
                let data = socket["data"] as? [String: Any] ?? [:]
                var text = "\(socket["protocol"] as? String ?? "")"
                if let state = data["state"] as? String { text += " (\(state))" }
                if let source = data["src"] as? String {
                    // IPv6 addresses take brackets before a port.
                    func endpoint(_ address: String, _ port: Int) -> String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
                    text += " \(endpoint(source, data["src_port"] as? Int ?? 0)) → \(endpoint(data["dst"] as? String ?? "", data["dst_port"] as? Int ?? 0))"
                } else if let address = data["address"] as? String {
                    text += " \(address)"
                }
                out += "<li class=\"mono\">\(escape(text))</li>"
            }
            out += "</ul></details>"
        }
        if let environment = process["environment_variables"] as? [String: String], !environment.isEmpty {
            // Environments hold secrets: folded by default, and masked for viewers without the admin role.
            let masked = environment.values.contains(SecretRedaction.placeholder)
            out += "<details><summary>\(environment.count) environment variables\(masked ? " (values shown to admins only)" : "")</summary><ul>"
            for (key, value) in environment.sorted(by: { $0.key < $1.key }) { out += "<li class=\"mono\">\(escape(key))=\(escape(value))</li>" }
            out += "</ul></details>"
        }
        if let children = process["children"] as? [[String: Any]], !children.isEmpty {
            out += "<ul>" + children.map { processItem($0, files: files, sockets: sockets) }.joined() + "</ul>"
        }
        return out + "</li>"
    }

    /// The stored statement, checked against the service's key as the page is drawn (a row changed behind the
    /// service's back shows as such), with the command that checks it from outside.
    private func provenance(_ record: CheckpointRecord) -> String {
        guard let signing = context.signing else { return "<span class=\"muted\" id=\"provenance\">not signed by this service</span>" }
        guard let stored = try? context.catalog.statement(of: record.id),
              let envelope = stored.decodedEnvelope else {
            return "<span class=\"badge bad\" id=\"provenance\">unsigned</span>"
        }
        do {
            let (statement, _) = try ProvenanceVerifier(trusting: signing.signer.publicKey).verify(envelope)
            return "<span class=\"badge ok\" id=\"provenance\">signed</span> statement \(statement.chain.index) of chain "
                + "<span class=\"mono\">\(escape(statement.chain.key))</span>, key <span class=\"mono\">\(signing.signer.publicKey.keyID)</span>; "
                + "check it with <code>ferry verify \(record.id.prefix(12))</code>"
        } catch {
            return "<span class=\"badge bad\" id=\"provenance\">\(escape(error.code.rawValue))</span> \(escape(error.message))"
        }
    }

    private func validationBadge(_ record: CheckpointRecord) -> String {
        switch record.validationState {
        case "clean": return "<span class=\"badge ok\">clean</span>"
        case "warnings": return "<span class=\"badge warn\">warnings</span>"
        case "errors": return "<span class=\"badge bad\">errors</span>"
        default: return "<span class=\"badge none\">not validated</span>"
        }
    }

    // MARK: Sign-in

    private func loginForm(error: String?) -> String {
        var out = "<h1>Sign in</h1>"
        if let error { out += "<p class=\"badge bad\">\(escape(error))</p>" }
        out += "<form method=\"post\" action=\"/login\" class=\"filters\"><label>Token<input type=\"password\" name=\"token\" autocomplete=\"off\"></label><button type=\"submit\">Sign in</button></form>"
        out += "<p class=\"muted\">Any token with the read role or above. This browser gets a session for 12 hours (an HttpOnly cookie that never holds the token).</p>"
        return out
    }

    private func login(body: HTTPRequestBody?) throws -> HTTPResponse {
        var form: [UInt8] = []
        while let body {
            let chunk = try body.nextChunk()
            if chunk.isEmpty { break }
            form += chunk
            guard form.count <= 4096 else { throw HTTPError(.payloadTooLarge, "the form is too large") }
        }
        let text = String(decoding: form, as: UTF8.self)
        let token = text.split(separator: "&").compactMap { pair -> String? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == "token" else { return nil }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }.first ?? ""
        guard let identity = context.tokens.identity(forAuthorization: "Bearer \(token)") else {
            var response = html(title: "Sign in", content: loginForm(error: "That token is not valid."))
            response.status = 401
            return response
        }
        // The cookie carries a session, never the token.
        let session = context.sessions.create(for: identity)
        return HTTPResponse(status: 303, headers: [
            ("Location", "/"),
            ("Set-Cookie", "ferry_session=\(session); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(context.sessions.lifetime))"),
        ], body: .empty)
    }

    /// The session a browser signed in with.
    static func sessionCookie(_ request: HTTPRequest) -> String? {
        guard let cookies = request.header("cookie") else { return nil }
        for cookie in cookies.split(separator: ";") {
            let parts = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "ferry_session" { return String(parts[1]) }
        }
        return nil
    }

    // MARK: Rendering helpers

    private func staticFile(_ request: HTTPRequest, name: String) throws -> HTTPResponse {
        guard !name.contains("/"), !name.hasPrefix("."), name.hasSuffix(".css") || name.hasSuffix(".js") || name.hasSuffix(".svg") else {
            throw HTTPError(.notFound, "no such file")
        }
        let path = context.webRoot + "/" + name
        guard FileManager.default.fileExists(atPath: path) else { throw HTTPError(.notFound, "no such file") }
        let type = name.hasSuffix(".css") ? "text/css" : name.hasSuffix(".js") ? "text/javascript" : "image/svg+xml"
        return .file(path: path, request: request, etag: nil, contentType: type, extraHeaders: [("Cache-Control", "max-age=300")])
    }

    private func html(title: String, content: String) -> HTTPResponse {
        let layout = (try? String(contentsOfFile: context.webRoot + "/layout.html", encoding: .utf8))
            ?? "<!doctype html><title>{{title}}</title>{{content}}"
        let page = layout.replacingOccurrences(of: "{{title}}", with: escape(title))
            .replacingOccurrences(of: "{{content}}", with: content)
        return html(body: Array(page.utf8))
    }

    private func html(body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
        ], body: .bytes(body))
    }

    private func field(_ name: String, _ title: String, _ value: String?, placeholder: String = "") -> String {
        "<label>\(title)<input type=\"text\" name=\"\(name)\" value=\"\(escape(value ?? ""))\" placeholder=\"\(escape(placeholder))\"></label>\n"
    }

    private func queryString(_ parameters: [String: String]) -> String {
        parameters.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { key, value in
            "\(percentEncode(key))=\(percentEncode(value))"
        }.joined(separator: "&amp;")
    }

    private func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

/// Escapes text for HTML element content and quoted attribute values.
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}
