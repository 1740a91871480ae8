import PosternCore
import Testing

@Suite("The environ's variables (one buffer and an index)")
struct EnvironVariablesTests {
    @Test("set, replace (shorter and longer), remove; the order is the order of setting")
    func setReplaceRemove() {
        var variables = EnvironVariables()
        variables["REQUEST_METHOD"] = "GET"
        variables["PATH_INFO"] = "/a/long/path"
        variables["QUERY_STRING"] = "x=1"
        #expect(variables.keys == ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING"])
        variables["PATH_INFO"] = "/b"  // shorter: in place
        variables["REQUEST_METHOD"] = "OPTIONS"  // longer: new bytes
        #expect(variables["PATH_INFO"]?.string == "/b")
        #expect(variables["REQUEST_METHOD"]?.string == "OPTIONS")
        #expect(variables.count == 3)
        variables["PATH_INFO"] = nil
        #expect(variables["PATH_INFO"] == nil)
        #expect(variables.keys == ["REQUEST_METHOD", "QUERY_STRING"])
        variables["PATH_INFO"] = ""
        #expect(variables["PATH_INFO"]?.isEmpty == true)
        #expect(variables["PATH"] == nil && variables["PATH_INFO_"] == nil && variables[""] == nil)
    }

    @Test("a copy is a value: changing it leaves the original alone")
    func valueSemantics() {
        let original: EnvironVariables = ["SCRIPT_NAME": "/app", "PATH_INFO": "/x"]
        var copy = original
        copy["SCRIPT_NAME"] = ""
        copy["HTTP_HOST"] = "example.org"
        #expect(original["SCRIPT_NAME"]?.string == "/app")
        #expect(original.count == 2)
        #expect(copy.count == 3)
    }

    @Test("equal when the same names have the same values, in any order; the dictionary round-trips")
    func equality() {
        let a: EnvironVariables = ["A": "1", "B": "2"]
        var b = EnvironVariables()
        b["B"] = "2"
        b["A"] = "1"
        #expect(a == b)
        b["A"] = "3"
        #expect(a != b)
        #expect(a != ["A": "1"])
        #expect(EnvironVariables(a.dictionary) == a)
        #expect(a.dictionary == ["A": "1", "B": "2"])
        #expect(a.description == #"["A": "1", "B": "2"]"#)
    }

    @Test("bytes that are not UTF-8 are kept exactly")
    func rawBytes() {
        var variables = EnvironVariables()
        variables["QUERY_STRING"] = EnvironValue(bytes: [0x61, 0xFF, 0x62])
        #expect(variables["QUERY_STRING"]?.bytes == [0x61, 0xFF, 0x62])
        #expect(variables["QUERY_STRING"]?.isUTF8 == false)
        variables["PATH_INFO"] = "/é"
        #expect(variables["PATH_INFO"]?.utf8 == "/é")
    }

    @Test("a thousand names: looked up, replaced and removed through the hash table, as few are")
    func manyNames() {
        var variables = EnvironVariables()
        for index in 0..<1_000 { variables["V\(index)"] = EnvironValue(String(index)) }
        #expect(variables.count == 1_000)
        #expect(variables["V0"]?.string == "0")
        #expect(variables["V999"]?.string == "999")
        #expect(variables["V1000"] == nil)
        for index in stride(from: 0, to: 1_000, by: 2) { variables["V\(index)"] = nil }
        #expect(variables.count == 500)
        #expect(variables["V2"] == nil && variables["V3"]?.string == "3")
        variables["V3"] = "three"
        #expect(variables["V3"]?.string == "three")
        // Down to a few again: the scan finds what the table found.
        for index in stride(from: 1, to: 990, by: 2) { variables["V\(index)"] = nil }
        #expect(variables.keys == ["V991", "V993", "V995", "V997", "V999"])
        #expect(variables["V995"]?.string == "995")
    }

    @Test("values replaced over and over do not grow the buffer without end")
    func replacedValues() {
        var variables: EnvironVariables = ["A": "x", "B": "y"]
        for round in 0..<2_000 {
            variables["A"] = EnvironValue(String(repeating: "a", count: round % 300 + 1))
        }
        #expect(variables["A"]?.string == String(repeating: "a", count: 1_999 % 300 + 1))
        #expect(variables["B"]?.string == "y")
        #expect(variables.count == 2)
    }

    @Test("the normalizer keeps the last of a repeated variable, and many distinct names")
    func builderRepeatsAndMany() throws {
        var builder = EnvironBuilder(gatewayProtocol: .fastcgi)
        builder.addVariable(name: "REQUEST_METHOD", value: "GET")
        builder.addVariable(name: "HTTP_COOKIE", value: "a=1")
        builder.addVariable(name: "HTTP_COOKIE", value: "b=2")
        for index in 0..<3_000 { builder.addVariable(name: "X\(index)", value: "v") }
        let result = try builder.finish()
        #expect(result.variables["HTTP_COOKIE"]?.string == "b=2")
        #expect(result.variables.count == 3_000 + 2 + 4)  // + SCRIPT_NAME, PATH_INFO, QUERY_STRING, GATEWAY_INTERFACE
        #expect(result.variables["X2999"]?.string == "v")
    }
}
