#if canImport(Glibc)
import Glibc
#endif

/// The CGI meta-variables of one request (RFC 3875 §4.1), in the order they were set: every
/// name and value as bytes in one buffer, with an index beside it.
///
/// A request's environ is built once per request and read a few times (the method, the path, a
/// header or two), so it is stored the way it arrives: a request costs two allocations (the
/// bytes, the index) instead of a `String` per name and per value and a hash table of them.
/// A lookup compares lengths, then bytes, along the index (a request carries a few dozen
/// variables); past ``hashedAbove`` names a hash table (Swift's seeded `Hasher`) finds them, so
/// a request of thousands of variables costs no more than a dictionary would.
///
/// It reads like a `[String: EnvironValue]`: `variables["PATH_INFO"]`, assignment (`nil`
/// removes), `for (key, value) in variables`, `keys`, `count`, a dictionary literal. Names are
/// unique: setting one that is there replaces its value in place. Two environs are equal when
/// they hold the same names with the same values, in any order. ``dictionary`` gives a copy as a
/// real dictionary.
public struct EnvironVariables: Sendable {
    /// Where a name and its value are in ``bytes``.
    struct Entry: Sendable {
        var nameStart: UInt32
        var nameCount: UInt32
        var valueStart: UInt32
        var valueCount: UInt32
    }

    /// Names and values, back to back; a replaced value's old bytes stay until ``compact()``.
    private var bytes: [UInt8] = []
    private var entries: [Entry] = []
    /// Open addressing over ``entries`` (index + 1; 0 is empty), kept only above
    /// ``hashedAbove`` entries.
    private var table: [Int32] = []

    /// The number of variables past which lookups go through a hash table.
    static let hashedAbove = 32

    public init() {}

    /// Room for `count` variables of `bytes` bytes in all, without growing.
    public init(reservingCapacity count: Int, bytes byteCount: Int) {
        entries.reserveCapacity(count)
        bytes.reserveCapacity(byteCount)
    }

    public init(_ dictionary: [String: EnvironValue]) {
        self.init(reservingCapacity: dictionary.count, bytes: 0)
        for (name, value) in dictionary { self[name] = value }
    }

    // MARK: Reading

    /// The value of `name`, or `nil`; setting `nil` removes it.
    public subscript(name: String) -> EnvironValue? {
        get {
            var name = name
            return name.withUTF8 { key in index(of: key).map { value(at: $0) } }
        }
        set {
            var name = name
            name.withUTF8 { key in
                if let newValue {
                    newValue.withBytes { set(name: key, value: $0) }
                } else {
                    remove(name: key)
                }
            }
        }
    }

    /// The names, in order.
    public var keys: [String] { entries.indices.map(name(at:)) }

    /// A copy as a dictionary.
    public var dictionary: [String: EnvironValue] {
        var result: [String: EnvironValue] = [:]
        result.reserveCapacity(entries.count)
        for index in entries.indices { result[name(at: index)] = value(at: index) }
        return result
    }

    /// Calls `body` with the bytes of `name`'s value, without making a value of them.
    public func withValueBytes<Result>(of name: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>?) throws -> Result) rethrows -> Result {
        guard let index = index(of: name) else { return try body(nil) }
        let entry = entries[index]
        return try bytes.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueCount)]))
        }
    }

    func name(at index: Int) -> String {
        let entry = entries[index]
        return bytes.withUnsafeBufferPointer { all in
            String(decoding: all[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameCount)], as: UTF8.self)
        }
    }

    func value(at index: Int) -> EnvironValue {
        let entry = entries[index]
        return bytes.withUnsafeBufferPointer { all in
            EnvironValue(validating: UnsafeBufferPointer(rebasing: all[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueCount)]))
        }
    }

    /// The index of the entry named `key`.
    func index(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        if !table.isEmpty { return hashedIndex(of: key) }
        let count = UInt32(truncatingIfNeeded: key.count)
        return bytes.withUnsafeBufferPointer { all in
            for (index, entry) in entries.enumerated() where entry.nameCount == count {
                if count == 0 || memcmp(all.baseAddress! + Int(entry.nameStart), key.baseAddress!, key.count) == 0 { return index }
            }
            return nil
        }
    }

    // MARK: Writing

    /// Sets `name` to `value`: replaces the value if the name is there, else appends both.
    public mutating func set(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        if let index = index(of: name) {
            replaceValue(at: index, with: value)
        } else {
            append(name: name, value: value)
        }
    }

    /// Appends a variable the caller knows is not there yet (``set(name:value:)`` otherwise).
    mutating func append(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        compactIfMostlyGarbage(adding: name.count + value.count)
        let nameStart = bytes.count
        bytes.append(contentsOf: name)
        let valueStart = bytes.count
        bytes.append(contentsOf: value)
        entries.append(
            Entry(
                nameStart: UInt32(nameStart), nameCount: UInt32(name.count),
                valueStart: UInt32(valueStart), valueCount: UInt32(value.count)))
        if !table.isEmpty {
            if entries.count * 2 > table.count {
                rebuildTable()
            } else {
                insertIntoTable(entries.count - 1)
            }
        } else if entries.count > Self.hashedAbove {
            rebuildTable()
        }
    }

    /// Removes `name` if it is there.
    public mutating func remove(name: UnsafeBufferPointer<UInt8>) {
        guard let index = index(of: name) else { return }
        if !table.isEmpty { removeFromTable(index) }
        entries.remove(at: index)
        if !table.isEmpty && entries.count <= Self.hashedAbove / 2 { table = [] }
    }

    private mutating func replaceValue(at index: Int, with value: UnsafeBufferPointer<UInt8>) {
        let entry = entries[index]
        if value.count <= Int(entry.valueCount) {
            // In place: a value that shrinks (or stays) needs no new bytes.
            bytes.withUnsafeMutableBufferPointer { all in
                _ = UnsafeMutableBufferPointer(rebasing: all[Int(entry.valueStart)...]).initialize(from: value)
            }
        } else {
            compactIfMostlyGarbage(adding: value.count)
            let start = bytes.count
            bytes.append(contentsOf: value)
            entries[index].valueStart = UInt32(start)
        }
        entries[index].valueCount = UInt32(value.count)
    }

    /// Rewrites ``bytes`` with only what the entries point at, when most of it is replaced values.
    private mutating func compactIfMostlyGarbage(adding count: Int) {
        guard bytes.count + count > 4096 else { return }
        let live = entries.reduce(0) { $0 + Int($1.nameCount + $1.valueCount) }
        guard bytes.count > 2 * live else { return }
        var fresh: [UInt8] = []
        fresh.reserveCapacity(live + count)
        bytes.withUnsafeBufferPointer { all in
            for index in entries.indices {
                let entry = entries[index]
                let nameStart = fresh.count
                fresh.append(contentsOf: all[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameCount)])
                let valueStart = fresh.count
                fresh.append(contentsOf: all[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueCount)])
                entries[index].nameStart = UInt32(nameStart)
                entries[index].valueStart = UInt32(valueStart)
            }
        }
        bytes = fresh
    }

    // MARK: Names known at compile time (the normalizer's)

    func withValueBytes<Result>(of name: StaticString, _ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        name.withUTF8Buffer { withValueBytes(of: $0, body) }
    }

    func contains(_ name: StaticString) -> Bool {
        name.withUTF8Buffer { index(of: $0) != nil }
    }

    mutating func set(_ name: StaticString, _ value: UnsafeBufferPointer<UInt8>) {
        name.withUTF8Buffer { set(name: $0, value: value) }
    }

    mutating func remove(_ name: StaticString) {
        name.withUTF8Buffer { remove(name: $0) }
    }

    // MARK: The hash table (many variables)

    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(key))
        return hasher.finalize()
    }

    private func hashedIndex(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        let mask = table.count - 1
        var slot = Self.hash(key) & mask
        return bytes.withUnsafeBufferPointer { all in
            while true {
                let stored = Int(table[slot])
                if stored == 0 { return nil }
                let entry = entries[stored - 1]
                if Int(entry.nameCount) == key.count
                    && (key.count == 0 || memcmp(all.baseAddress! + Int(entry.nameStart), key.baseAddress!, key.count) == 0)
                {
                    return stored - 1
                }
                slot = (slot + 1) & mask
            }
        }
    }

    private mutating func insertIntoTable(_ index: Int) {
        let mask = table.count - 1
        var slot = hashOfName(at: index) & mask
        while table[slot] != 0 { slot = (slot + 1) & mask }
        table[slot] = Int32(index + 1)
    }

    /// Takes entry `index` out of the table (backward-shift deletion: no tombstones) and
    /// renumbers the entries after it, which move down by one.
    private mutating func removeFromTable(_ index: Int) {
        let mask = table.count - 1
        var hole = table.firstIndex(of: Int32(index + 1))!
        var next = (hole + 1) & mask
        while table[next] != 0 {
            let ideal = hashOfName(at: Int(table[next]) - 1) & mask
            // The entry at `next` may fill the hole unless its probe starts after the hole.
            let fills = hole < next ? (ideal <= hole || ideal > next) : (ideal <= hole && ideal > next)
            if fills {
                table[hole] = table[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        table[hole] = 0
        let removed = Int32(index + 1)
        for slot in table.indices where table[slot] > removed { table[slot] -= 1 }
    }

    private func hashOfName(at index: Int) -> Int {
        let entry = entries[index]
        return bytes.withUnsafeBufferPointer { all in
            Self.hash(UnsafeBufferPointer(rebasing: all[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameCount)]))
        }
    }

    private mutating func rebuildTable() {
        guard entries.count > Self.hashedAbove else {
            table = []
            return
        }
        var size = 64
        while size < entries.count * 4 { size *= 2 }
        table = Array(repeating: 0, count: size)
        for index in entries.indices { insertIntoTable(index) }
    }
}

extension EnvironVariables: RandomAccessCollection {
    public typealias Element = (key: String, value: EnvironValue)
    public typealias Index = Int

    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count }

    public subscript(position: Int) -> (key: String, value: EnvironValue) {
        (name(at: position), value(at: position))
    }
}

extension EnvironVariables: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, EnvironValue)...) {
        self.init(reservingCapacity: elements.count, bytes: 0)
        for (name, value) in elements { self[name] = value }
    }
}

extension EnvironVariables: Equatable {
    /// The same names with the same values, in any order (as dictionaries compare).
    public static func == (lhs: EnvironVariables, rhs: EnvironVariables) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.indices.allSatisfy { index in
            lhs.withEntry(at: index) { name, value in
                rhs.withValueBytes(of: name) { other in other.map { $0.elementsEqual(value) } ?? false }
            }
        }
    }

    private func withEntry<Result>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        let entry = entries[index]
        return bytes.withUnsafeBufferPointer { all in
            body(
                UnsafeBufferPointer(rebasing: all[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameCount)]),
                UnsafeBufferPointer(rebasing: all[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueCount)]))
        }
    }
}

extension EnvironVariables: CustomStringConvertible {
    /// As a dictionary prints, in the order the variables were set.
    public var description: String {
        guard !isEmpty else { return "[:]" }
        return "[" + map { "\(String(reflecting: $0.key)): \(String(reflecting: $0.value.string))" }.joined(separator: ", ") + "]"
    }
}
