import FoundationEssentials
import Postern
import PosternRuntime

/// One app of `postern emperor`: the file `DIR/NAME.json`, read and checked as far as the
/// emperor itself needs it. A pure value: bytes in, the app out (or the one error to log).
///
/// Its keys are the serving options as in a `--config` file (``ServeConfiguration``), plus the
/// emperor's own:
/// - `exec`: the app binary (built on `Gateway.main`), absolute or relative to the directory;
///   by default the emperor's own binary as `postern serve`.
/// - `on-demand`: no process until the first connection; with the app's own `idle-exit` (a
///   serving option, `--idle-exit`), it stops after that long without a request and starts
///   again at the next connection.
///
/// The listeners (`http`, `fastcgi`, `scgi`, `uwsgi`, `https`, `suwsgi`, `fastcgi-tls`) are
/// the emperor's to open, with `backlog`, `socket-mode`, `socket-owner` and `socket-group`; it
/// passes them to the app as `fd:N`. Every other key is the app's, checked by the app binary
/// itself (`--check-config`), so that a binary with options of its own is configured alike.
package struct AppFile: Sendable, Equatable {
    /// The file's name without `.json`.
    package let name: String
    /// The binary, as the file names it (resolved by the emperor against its directory).
    package let exec: String?
    /// Started by its first connection, not by the emperor's start.
    package let onDemand: Bool
    /// The listeners, in the order of the keys above and of each list.
    package let listeners: [Listener]
    package let backlog: Int32
    package let socketMode: UInt16
    package let socketOwner: String?
    package let socketGroup: String?
    /// The app's own keys, passed on as they are.
    package private(set) var passedOn: [String: JSONValue]
    /// FNV-1a of the file's bytes, in hexadecimal: the status page's configuration hash, and
    /// what tells an edit from a `touch`.
    package let hash: String
    /// Tyrant mode: the account the app runs as from its first instruction (its file's owner).
    package private(set) var runAs: RunAs?

    package struct RunAs: Sendable, Equatable {
        package let user: String
        package let uid: UInt32
        package let gid: UInt32
    }

    package struct Listener: Sendable, Hashable, CustomStringConvertible {
        package let listenerProtocol: ListenerProtocol
        package let address: ListenAddress

        package init(_ listenerProtocol: ListenerProtocol, _ address: ListenAddress) {
            self.listenerProtocol = listenerProtocol
            self.address = address
        }

        package var description: String { "\(listenerProtocol.rawValue) \(address)" }
    }

    /// The emperor's keys, which the app does not see.
    package static let emperorKeys: Set<String> = ["exec", "on-demand"]
    /// Keys that the emperor applies as it opens the listeners (the app sees them too).
    static let socketKeys: Set<String> = ["backlog", "socket-mode", "socket-owner", "socket-group"]

    /// `NAME` for `NAME.json`, when `NAME` may name an app: letters, digits, `.`, `_`, `-`, not
    /// starting with a dot (editors' and the emperor's own hidden files are not apps).
    package static func name(ofFile file: String) -> String? {
        guard file.hasSuffix(".json"), !file.hasPrefix(".") else { return nil }
        let name = String(file.dropLast(5))
        guard !name.isEmpty, name.utf8.count <= 64,
            name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d })
        else { return nil }
        return name
    }

    /// Reads the app `name` from the file's bytes; `path` names the file in errors.
    package init(name: String, path: String, bytes: [UInt8]) throws(AppFileError) {
        let object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch DecodingError.typeMismatch {
            throw AppFileError(path: path, key: nil, reason: "expected a JSON object of option names and values")
        } catch {
            throw AppFileError(path: path, key: nil, reason: "not valid JSON (\(Self.describe(error)))")
        }
        self.name = name
        func string(_ key: String) throws(AppFileError) -> String? {
            guard let value = object[key] else { return nil }
            guard case .string(let text) = value, !text.isEmpty else { throw AppFileError(path: path, key: key, reason: "expected a string, found \(value)") }
            return text
        }
        exec = try string("exec")
        switch object["on-demand"] {
        case nil: onDemand = false
        case .bool(let flag)?: onDemand = flag
        case let other?: throw AppFileError(path: path, key: "on-demand", reason: "expected true or false, found \(other)")
        }
        if let idle = object["idle-exit"], !onDemand {
            throw AppFileError(
                path: path, key: "idle-exit", reason: "\(idle) s, but the app is not \"on-demand\": nothing would start it again (add \"on-demand\": true)")
        }
        socketOwner = try string("socket-owner")
        socketGroup = try string("socket-group")
        let modeText = try string("socket-mode") ?? "660"
        guard let mode = UInt16(modeText, radix: 8), mode <= 0o777 else {
            throw AppFileError(path: path, key: "socket-mode", reason: "\"\(modeText)\" is not an octal mode such as 660")
        }
        socketMode = mode
        switch object["backlog"] {
        case nil: backlog = ListeningSocket.defaultBacklog
        case .int(let number)? where (1...65535).contains(number): backlog = Int32(number)
        case let other?: throw AppFileError(path: path, key: "backlog", reason: "expected an integer from 1 to 65535, found \(other)")
        }
        var listeners: [Listener] = []
        for kind in ListenerProtocol.allCases {
            guard let value = object[kind.rawValue] else { continue }
            guard let addresses = value.arguments(as: .list) else {
                throw AppFileError(path: path, key: kind.rawValue, reason: "expected a list of addresses, found \(value)")
            }
            for text in addresses {
                let address: ListenAddress
                do {
                    address = try ListenAddress(parsing: text)
                } catch {
                    throw AppFileError(path: path, key: kind.rawValue, reason: "\(error)")
                }
                if case .fd = address {
                    throw AppFileError(path: path, key: kind.rawValue, reason: "\(text): the emperor opens the app's sockets; give an address")
                }
                let listener = Listener(kind, address)
                guard !listeners.contains(where: { $0.address == address }) else {
                    throw AppFileError(path: path, key: kind.rawValue, reason: "\(text) is given twice")
                }
                listeners.append(listener)
            }
        }
        guard !listeners.isEmpty else {
            throw AppFileError(
                path: path, key: nil,
                reason: "no listener: give at least one of \(ListenerProtocol.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        self.listeners = listeners
        let listenerKeys = Set(ListenerProtocol.allCases.map(\.rawValue))
        passedOn = object.filter { !Self.emperorKeys.contains($0.key) && !listenerKeys.contains($0.key) }
        hash = Self.fnv1a(bytes)
    }

    /// Tyrant mode (`--tyrant`, uWSGI's name): the app runs as its file's owner and group, so
    /// that whoever may write a file in the directory runs an app as themselves and no one else.
    /// A file owned by root runs as the `"user"` it names (and must name one). Any other
    /// owner's file may not name another user or group, nor what the emperor would do as root
    /// on its behalf: a port below 1024, a socket given to another owner, `allow-root`.
    ///
    /// - Parameter user: the owner's account name; nil when the uid has none.
    package func owned(by uid: UInt32, group gid: UInt32, user: String?, path: String) throws(AppFileError) -> AppFile {
        if uid == 0 {
            guard passedOn["user"] != nil else {
                throw AppFileError(
                    path: path, key: "user", reason: "the file is owned by root: with --tyrant it must name the user its app runs as (or belong to that user)")
            }
            return self
        }
        guard let user else {
            throw AppFileError(path: path, key: nil, reason: "its owner, uid \(uid), has no account: --tyrant runs an app as its file's owner")
        }
        for key in ["user", "group", "socket-owner", "allow-root"] where passedOn[key] != nil {
            if key == "user", passedOn[key] == .string(user) || passedOn[key] == .string(String(uid)) { continue }
            throw AppFileError(
                path: path, key: key, reason: "the file is owned by \(user): with --tyrant its app runs as \(user), and only a file owned by root may choose")
        }
        if socketOwner != nil {
            throw AppFileError(path: path, key: "socket-owner", reason: "the file is owned by \(user): with --tyrant only a file owned by root may choose")
        }
        for listener in listeners {
            if case .tcp(_, let port) = listener.address, port < 1024 {
                throw AppFileError(
                    path: path, key: listener.listenerProtocol.rawValue,
                    reason: "port \(port) is privileged: with --tyrant the emperor opens it as root, so only a file owned by root may ask for it")
            }
        }
        var owned = self
        owned.passedOn["user"] = nil
        owned.runAs = RunAs(user: user, uid: uid, gid: gid)
        return owned
    }

    /// The app's configuration file as the emperor writes it: the app's own keys, and each
    /// listener as `fd:N` (`descriptors`, in the order of ``listeners``), or as the file gave
    /// the addresses when `descriptors` is nil (for the binary's `--check-config`, which opens
    /// nothing).
    package func configuration(descriptors: [Int32]?) -> [UInt8] {
        var object = passedOn
        var byProtocol: [String: [JSONValue]] = [:]
        for (index, listener) in listeners.enumerated() {
            let text = descriptors.map { "fd:\($0[index])" } ?? listener.address.description
            byProtocol[listener.listenerProtocol.rawValue, default: []].append(.string(text))
        }
        for (key, values) in byProtocol { object[key] = .array(values) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(object)) ?? Data("{}".utf8))
    }

    static func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// The decoder's reason without its coding path.
    private static func describe(_ error: any Error) -> String {
        guard case DecodingError.dataCorrupted(let context) = error else { return "\(error)" }
        return context.underlyingError.map { "\(context.debugDescription): \($0)" } ?? context.debugDescription
    }
}

/// What is wrong with an app's file: one line naming the file, the key when one is at fault,
/// and the reason.
package struct AppFileError: Error, Sendable, Equatable, CustomStringConvertible {
    package let path: String
    package let key: String?
    package let reason: String

    package init(path: String, key: String?, reason: String) {
        self.path = path
        self.key = key
        self.reason = reason
    }

    package var description: String { "\(path): \(key.map { "key \"\($0)\": " } ?? "")\(reason)" }
}
