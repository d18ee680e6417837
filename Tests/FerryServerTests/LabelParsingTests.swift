import FerryTestSupport
import Foundation
import Testing

/// Labels are split on the scalars ',' and '=': a combining mark right after '=' (an emoji skin tone, an accent)
/// fuses with it into one Character, and must not hide the separator.
@Suite("label parsing")
struct LabelParsingTests {
    @Test("a value starting with a combining mark is a value; keys stay ASCII")
    func combiningMarks() throws {
        let server = try TestServer()
        let labels = "tone=\u{1F3FB},accent=\u{0301}e,plain=v"
        let encoded = labels.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let uploaded = try server.upload(Fixtures.archive("podman-counter-none.tar"), query: "?labels=\(encoded)")
        #expect(uploaded.status == 201, "\(uploaded.text)")
        let stored = (uploaded.json["checkpoint"] as? [String: Any])?["labels"] as? [String: String]
        #expect(stored == ["tone": "\u{1F3FB}", "accent": "\u{0301}e", "plain": "v"], "\(stored ?? [:])")
        let nonASCIIKey = try server.upload(Fixtures.archive("podman-inpod.tar"), query: "?labels=%C3%A9t%C3%A9=x")
        #expect(nonASCIIKey.status == 400)
        #expect(nonASCIIKey.errorCode == "INVALID_LABELS")
    }
}
