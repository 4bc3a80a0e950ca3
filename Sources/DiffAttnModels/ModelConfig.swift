import DiffAttnModule
import DiffAttnProcessors

/// Typed reads of a diffusers `config.json`: each accessor applies the class's default when the
/// field is absent or null-by-default, and throws an error naming the field and the class when
/// the value has the wrong type or an absurd size. Keys diffusers adds (`_class_name`,
/// `_diffusers_version`, ...) and fields that do not place attention are ignored.
public struct ModelConfig: Sendable {
    public let className: String
    public let json: JSONValue
    /// Sizes above this are rejected before any arithmetic (a C caller controls the text).
    static let maxSize = 1 << 20

    public init(className: String, json: JSONValue) throws {
        guard case .object = json else {
            throw DiffAttnError.type("the config of \(className) must be a JSON object, got \(json.typeName)")
        }
        self.className = className
        self.json = json
    }

    public init(className: String, text: String) throws {
        try self.init(className: className, json: try JSONParser.parse(text))
    }

    func has(_ key: String) -> Bool {
        if let v = json[key], v != .null { return true }
        return false
    }

    private func fail(_ key: String, _ expected: String, _ got: JSONValue) -> DiffAttnError {
        DiffAttnError.type("config field '\(key)' of \(className) must be \(expected), got \(got.typeName) \(got.serialized)")
    }

    private func checkedInt(_ key: String, _ v: JSONValue, min lower: Int) throws -> Int {
        guard case .number = v, let i = v.exactInt else { throw fail(key, "an integer", v) }
        guard i >= lower, i <= ModelConfig.maxSize else {
            throw DiffAttnError.value("config field '\(key)' of \(className) must be in \(lower)...\(ModelConfig.maxSize), got \(i)")
        }
        return i
    }

    func int(_ key: String, _ fallback: Int, min lower: Int = 1) throws -> Int {
        guard let v = json[key], v != .null else { return fallback }
        return try checkedInt(key, v, min: lower)
    }

    func optionalInt(_ key: String, _ fallback: Int?, min lower: Int = 1) throws -> Int? {
        guard let v = json[key] else { return fallback }
        if v == .null { return nil }
        return try checkedInt(key, v, min: lower)
    }

    func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let v = json[key], v != .null else { return fallback }
        guard case .bool(let b) = v else { throw fail(key, "a boolean", v) }
        return b
    }

    func string(_ key: String, _ fallback: String?) throws -> String? {
        guard let v = json[key] else { return fallback }
        if v == .null { return nil }
        guard case .string(let s) = v else { throw fail(key, "a string", v) }
        return s
    }

    func strings(_ key: String, _ fallback: [String]) throws -> [String] {
        guard let v = json[key], v != .null else { return fallback }
        guard case .array(let items) = v else { throw fail(key, "a list of strings", v) }
        return try items.map {
            guard case .string(let s) = $0 else { throw fail(key, "a list of strings", v) }
            return s
        }
    }

    func ints(_ key: String, _ fallback: [Int], min lower: Int = 1) throws -> [Int] {
        guard let v = json[key], v != .null else { return fallback }
        guard case .array(let items) = v, items.count <= ModelConfig.maxSize else { throw fail(key, "a list of integers", v) }
        return try items.map { try checkedInt(key, $0, min: lower) }
    }

    /// An int-or-list field (`layers_per_block`, `attention_head_dim`, ...) as one value per block.
    func perBlock(_ key: String, _ fallback: Int?, count: Int, min lower: Int = 1) throws -> [Int] {
        guard let v = json[key], v != .null else {
            guard let fallback else { throw DiffAttnError.value("config field '\(key)' of \(className) is required") }
            return Array(repeating: fallback, count: count)
        }
        if case .array(let items) = v {
            guard items.count == count else {
                throw DiffAttnError.value("config field '\(key)' of \(className) must have one entry per block (\(count)), got \(items.count)")
            }
            return try items.map { try checkedInt(key, $0, min: lower) }
        }
        return Array(repeating: try checkedInt(key, v, min: lower), count: count)
    }

    /// A bool-or-list field (`only_cross_attention`) as one value per block.
    func perBlockBool(_ key: String, _ fallback: Bool, count: Int) throws -> [Bool] {
        guard let v = json[key], v != .null else { return Array(repeating: fallback, count: count) }
        if case .bool(let b) = v { return Array(repeating: b, count: count) }
        guard case .array(let items) = v, items.count == count else {
            throw fail(key, "a boolean or a list of \(count) booleans", v)
        }
        return try items.map {
            guard case .bool(let b) = $0 else { throw fail(key, "a boolean or a list of booleans", v) }
            return b
        }
    }
}
