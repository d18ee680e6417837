import Foundation
import Testing
@testable import FerryObjectStore

/// The signer against the worked example in the S3 documentation ("Signature Calculations for the
/// Authorization Header: Transferring Payload in a Single Chunk", GET Object with a Range).
@Suite struct SignatureV4Tests {
    @Test func aGetObjectWithARangeIsSignedAsTheAWSDocumentationExampleIs() {
        let signer = SignatureV4(credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                                            secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                                 region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600) // 2013-05-24T00:00:00Z
        let headers = signer.sign(method: "GET", path: "/test.txt", query: [],
                                  headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
                                  payloadHash: SignatureV4.emptyPayloadHash, date: date)
        let authorization = headers.first { $0.name == "Authorization" }?.value
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers.first { $0.name == "x-amz-date" }?.value == "20130524T000000Z")
    }

    @Test func queryParametersAreEncodedAndSortedAsSigV4Asks() {
        #expect(SignatureV4.uriEncode("a b/c~d*") == "a%20b%2Fc~d%2A")
        #expect(SignatureV4.uriEncode("blobs/sha256/ab", keepSlash: true) == "blobs/sha256/ab")
    }

    @Test func aConfigurationWithoutCredentialsIsRefusedWithItsCode() {
        #expect(throws: S3Error.self) {
            try S3Configuration.parse(location: "s3://bucket/p", endpoint: nil, pathStyle: false, environment: ["AWS_REGION": "x"])
        }
        do {
            _ = try S3Configuration.parse(location: "/var/lib/ferry", endpoint: nil, pathStyle: false, environment: [:])
        } catch { #expect(error.code == "S3_CONFIG_INVALID") }
        let parsed = try? S3Configuration.parse(location: "s3://bucket/a/b/", endpoint: "http://127.0.0.1:9000",
                                                pathStyle: false, environment: ["AWS_REGION": "r", "AWS_ACCESS_KEY_ID": "k",
                                                                                "AWS_SECRET_ACCESS_KEY": "s"])
        #expect(parsed?.bucket == "bucket")
        #expect(parsed?.prefix == "a/b")
        #expect(parsed?.pathStyle == true)
    }
}
