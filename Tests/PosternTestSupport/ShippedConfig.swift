/// The shipped front-end configuration files, with their variables set for a test run.
import Foundation
import Postern

/// A shipped configuration file with its variables set for a test run.
///
/// Apache files set their variables with `Define NAME value`, lighttpd files with
/// `var.name = value`; nginx files are plain snippets whose literal addresses are replaced. Every
/// substitution must match, so a test cannot silently drift from the file it claims to prove.
public enum ShippedConfig {
    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOfFile: Paths.root + "/" + relativePath, encoding: .utf8)
    }

    public static func apache(_ relativePath: String, defines: [String: String]) throws -> String {
        var text = try self.text(relativePath)
        for (name, value) in defines {
            let pattern = "(?m)^Define \(name) .*$"
            guard text.range(of: pattern, options: .regularExpression) != nil else {
                throw TestFailure("\(relativePath) has no Define \(name)")
            }
            text = text.replacingOccurrences(of: pattern, with: "Define \(name) \(value)", options: .regularExpression)
        }
        return text
    }

    public static func lighttpd(_ relativePath: String, variables: [String: String]) throws -> String {
        var text = try self.text(relativePath)
        for (name, value) in variables {
            let pattern = "(?m)^var\\.\(name) = .*$"
            guard text.range(of: pattern, options: .regularExpression) != nil else {
                throw TestFailure("\(relativePath) has no var.\(name)")
            }
            text = text.replacingOccurrences(of: pattern, with: "var.\(name) = \(value)", options: .regularExpression)
        }
        return text
    }

    public static func nginx(_ relativePath: String, replacing replacements: [String: String]) throws -> String {
        var text = try self.text(relativePath)
        for (literal, value) in replacements {
            guard text.contains(literal) else { throw TestFailure("\(relativePath) does not contain \(literal)") }
            text = text.replacingOccurrences(of: literal, with: value)
        }
        return text
    }
}
