// Runs a fuzz target over files and directories (a corpus) without libFuzzer: the replay driver.
import Foundation

public enum FuzzReplay {
    /// Runs `target` on every file named in the arguments (directories are walked one level) and
    /// prints how many inputs ran.
    public static func main(_ target: (UnsafeBufferPointer<UInt8>) -> Void) {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                [UInt8](data).withUnsafeBufferPointer { target($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }

    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { path + "/" + $0 }
    }
}
