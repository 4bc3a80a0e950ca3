// The `diffattn` command-line tool: info / bench / selftest. (Placeholder until the bench lands.)
import DiffAttn
print("libdiffattn \(versionString)")
