// The JSON and safetensors parsers on malformed input: every case is an error with a message,
// never a trap (docs/deviations.md; issue 5).
import DiffAttn
import DiffAttnKernels
import XCTest

final class ModelParserTests: XCTestCase {
    private func rejects(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSONParser.parse(text), "accepted: \(text)", file: file, line: line)
    }

    func testJSONAcceptsDiffusersConfigsInOrder() throws {
        let v = try JSONParser.parse(#"{"b": [1, 2.5, -3e2], "a": {"x": null, "y": true}, "s": "\u00e9\n"}"#)
        guard case .object(let members) = v else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.0), ["b", "a", "s"])
        XCTAssertEqual(v["b"], .array([.number(1), .number(2.5), .number(-300)]))
        XCTAssertEqual(v["s"], .string("é\n"))
        XCTAssertEqual(try JSONParser.parse("\"\\ud83d\\ude00\""), .string("😀"))
    }

    func testJSONRejectsMalformedInput() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "NaN", "tru", "\"abc",
                    "\"\\x\"", "\"\\ud800\"", "{\"a\":1,\"a\":2}", "[1] 2", "1e999", "\"\u{01}\"", "{1:2}"] {
            rejects(bad)
        }
        rejects(String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000))
        XCTAssertThrowsError(try JSONParser.parse(bytes: [0x22, 0xFF, 0x22]))
    }

    func testConfigErrorsNameTheField() {
        XCTAssertThrowsError(try Model(className: "SD3Transformer2DModel", config: #"{"num_layers": "x"}"#)) {
            XCTAssertTrue(String(describing: $0).contains("num_layers"))
        }
        XCTAssertThrowsError(try Model(className: "NoSuchModel", config: "{}"))
        XCTAssertThrowsError(try Model(className: "AutoencoderKL", config: "[]"))
    }

    private func file(_ header: String, data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = length ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data
    }

    private func parse(_ bytes: [UInt8]) throws -> SafeTensorsHeader {
        try bytes.withUnsafeBytes { try SafeTensorsHeader($0, source: "test") }
    }

    func testSafeTensorsReadsEveryDtypeWidened() throws {
        let f32: [UInt8] = [0, 0, 0x80, 0x3F]          // 1.0
        let f16: [UInt8] = [0x00, 0x40]                // 2.0
        let bf16: [UInt8] = [0x40, 0x40]               // 3.0
        let bytes = file(#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[4,6]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}}"#,
                         data: f32 + f16 + bf16)
        let h = try parse(bytes)
        let values = bytes.withUnsafeBytes { buf in h.entries.map { h.read($0, from: buf).storage[0] } }
        XCTAssertEqual(values, [1, 2, 3])
        XCTAssertEqual(h.metadata.first?.1, "pt")
    }

    func testSafeTensorsRejectsBadFiles() {
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try parse(file(ok, data: [UInt8](repeating: 0, count: 8))))
        let cases: [(String, [UInt8])] = [
            ("truncated data", file(ok, data: [0, 0, 0])),
            ("bad json", file("{\"a\":", data: [])),
            ("offsets past end", file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}"#, data: [UInt8](repeating: 0, count: 8))),
            ("wrong dtype", file(#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
            ("size mismatch", file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
            ("negative offsets", file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [UInt8](repeating: 0, count: 8))),
            ("overlap", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: [UInt8](repeating: 0, count: 8))),
            ("huge header length", file(ok, data: [], length: UInt64.max)),
            ("header past end", file(ok, data: [], length: 1 << 20)),
            ("too short", [1, 2, 3]),
            ("not an object", file("[]", data: [])),
            ("huge shape", file(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try parse(bytes), what)
        }
    }

    func testSafeTensorsFileErrors() {
        XCTAssertThrowsError(try SafeTensorsFile(path: "/nonexistent/x.safetensors")) {
            XCTAssertEqual(($0 as? DiffAttnError)?.kind, .io)
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: "/tmp"))
    }
}
