import DiffAttnKernels
import DiffAttnModule
import Glibc

// `ModelMixin.from_pretrained(folder)` for a local folder (diffusers' modeling_utils.py:
// from_pretrained; utils/hub_utils.py: _get_checkpoint_shard_files): config.json, then either
// diffusion_pytorch_model.safetensors or the shards its .index.json names. What no shard provided
// is reported, and unless the caller opted into random initialisation the modules whose weights
// are missing refuse to run (include/diffattn.h, da_model_load_pretrained).

/// What `fromPretrained` loaded: the state-dict report (strict accounting across all shards) and
/// the safetensors files read, in the order read.
public struct PretrainedLoad: Sendable {
    public var report: LoadReport
    public var files: [String]
}

extension ModelConfig {
    /// A config that names its class (`_class_name`, as diffusers saves it) must name this one.
    public func checkClassName() throws {
        guard let v = json["_class_name"], v != .null else { return }
        guard case .string(let named) = v else {
            throw DiffAttnError.type("config field '_class_name' must be str, got \(v.typeName)")
        }
        guard named == className else {
            throw DiffAttnError.value("the config is for '\(named)' (its _class_name), not '\(className)'")
        }
    }
}

extension Model {
    public static let weightsFileName = "diffusion_pytorch_model.safetensors"
    public static let weightsIndexName = "diffusion_pytorch_model.safetensors.index.json"
    /// Largest index file read (real ones are a few hundred KiB).
    static let maxIndexBytes = 64 << 20

    /// Builds the model of `className` from `directory`/config.json and loads its weights. With
    /// `allowRandomInit` false, every attention module missing a weight refuses to run (a forward
    /// fails with DA_ERR_STATE naming the weight) until that weight is loaded.
    /// `className` nil: the class config.json names (`_class_name`). `strict`: a missing or
    /// unexpected attention weight, counted over all shards, is an error (nothing is returned).
    public static func fromPretrained(directory: String, className requested: String?, strict: Bool = false,
                                      keepOtherWeights: Bool = true, allowRandomInit: Bool) throws -> (Model, PretrainedLoad) {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let configText = try readTextFile(dir + "/config.json", limit: ModelConfig.maxSize)
        let json = try JSONParser.parse(configText)
        var className = requested
        if className == nil, case .string(let named)? = json["_class_name"] { className = named }
        guard let className else {
            throw DiffAttnError.value("\(dir)/config.json has no _class_name; name the model class")
        }
        guard let cls = ModelClass(name: className) else {
            throw DiffAttnError(.notFound, "unknown model class '\(className)'; expected one of: "
                                + ModelClass.allCases.map(\.name).joined(separator: ", "))
        }
        let config = try ModelConfig(className: className, json: json)
        try config.checkClassName()
        let model = try Model(cls, config)
        let files = try weightFiles(in: dir)
        let opened = try files.map { try SafeTensorsFile(path: $0) }
        var names: [String] = [], where_: [(Int, Int)] = []
        for (f, file) in opened.enumerated() {
            for (e, entry) in file.header.entries.enumerated() { names.append(entry.name); where_.append((f, e)) }
        }
        let report = try model.loadStateDict(names, strict: strict, keepOtherWeights: keepOtherWeights, tensor: { i in
            let (f, e) = where_[i]
            return opened[f].read(opened[f].header.entries[e])
        }, shapeOf: { i in opened[where_[i].0].header.entries[where_[i].1].shape })
        if !allowRandomInit { model.markUnloaded(report.missing) }
        return (model, PretrainedLoad(report: report, files: files))
    }

    /// The safetensors files of a folder: the shards of the index (each once, in the order the
    /// index first names them), else the single file.
    static func weightFiles(in dir: String) throws -> [String] {
        let indexPath = dir + "/" + weightsIndexName
        guard access(indexPath, F_OK) == 0 else {
            let single = dir + "/" + weightsFileName
            guard access(single, F_OK) == 0 else {
                throw DiffAttnError(.io, "'\(dir)' has neither \(weightsFileName) nor \(weightsIndexName)")
            }
            return [single]
        }
        let index = try JSONParser.parse(try readTextFile(indexPath, limit: maxIndexBytes))
        guard case .object(let map)? = index["weight_map"] else {
            throw DiffAttnError.value("\(indexPath): no 'weight_map' object")
        }
        var files: [String] = [], seen = Set<String>()
        for (name, v) in map {
            guard case .string(let file) = v else {
                throw DiffAttnError.value("\(indexPath): weight_map['\(name)'] must be a file name, got \(v.typeName)")
            }
            guard !file.isEmpty, !file.contains("/"), file != "..", file != "." else {
                throw DiffAttnError.value("\(indexPath): weight_map['\(name)'] = '\(file)' is not a file name in the folder")
            }
            if seen.insert(file).inserted { files.append(file) }
        }
        for file in files where access(dir + "/" + file, F_OK) != 0 {
            throw DiffAttnError(.io, "shard '\(file)' named by \(weightsIndexName) is missing from '\(dir)'")
        }
        return files.map { dir + "/" + $0 }
    }

    /// Marks each attention module's missing entries (full names from a load report).
    func markUnloaded(_ missing: [String]) {
        guard !missing.isEmpty else { return }
        for (path, a) in attentionModules {
            let prefix = path + "."
            let local = missing.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
            if !local.isEmpty { a.parameters.unloaded.formUnion(local) }
        }
    }

    /// Full names of the attention weights still unloaded (a model from `fromPretrained` without
    /// random initialisation), in `attn_processors` order.
    public var unloadedWeights: [String] {
        attentionModules.flatMap { path, a in
            a.parameters.specs.filter { a.parameters.unloaded.contains($0.name) }.map { path + "." + $0.name }
        }
    }
}

/// A whole text file, refused above `limit` bytes.
func readTextFile(_ path: String, limit: Int) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw DiffAttnError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw DiffAttnError(.io, "'\(path)' is not a regular file") }
    let size = Int(st.st_size)
    guard size <= limit else { throw DiffAttnError.value("'\(path)' has \(size) bytes, more than the \(limit) accepted") }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw DiffAttnError(.io, "cannot read '\(path)': \(n == 0 ? "file shrank" : String(cString: strerror(errno)))") }
        done += n
    }
    return String(decoding: bytes, as: UTF8.self)
}
