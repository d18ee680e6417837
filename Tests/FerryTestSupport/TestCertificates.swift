public import Foundation

/// Certificates made with openssl for one test run, for the HTTPS doubles: in `directory`, `ca.pem`/`ca.key`,
/// `server.pem`/`server.key` for 127.0.0.1 (its subjectAltName) signed by that CA, and `client.pem`/`client.key`
/// with the common name the double expects of a client certificate.
public enum TestCertificates {
    public static func make(in directory: URL, authority: String, clientCommonName: String) throws {
        func openssl(_ arguments: [String]) throws {
            let result = try Fixtures.run("/usr/bin/openssl", arguments)
            guard result.status == 0 else { throw FixtureError("openssl \(arguments.first ?? ""): \(result.stderr)") }
        }
        let d = directory.path
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem", "-days", "2", "-subj", "/CN=\(authority)"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
        for (name, subject, extensions) in [("server", "/CN=127.0.0.1", ["-extfile", "\(d)/san.ext"]), ("client", "/CN=\(clientCommonName)", [])] {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/\(name).key", "-out", "\(d)/\(name).csr", "-subj", subject])
            try openssl(["x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
                         "-out", "\(d)/\(name).pem", "-days", "2"] + extensions)
        }
    }
}
