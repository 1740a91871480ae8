/// Postern's release, in one place: `postern --version`, every app binary's `--version` (after
/// the app's own name) and `SERVER_SOFTWARE` (RFC 3875 §4.1.17: "name/version") all read it.
///
/// Releases are tagged with this string; a package depends on Postern with
/// `.package(url: …, from: "0.2.0")`.
public enum PosternVersion {
    public static let current = "0.2.0"

    /// `Postern/0.2.0`: the product token of `SERVER_SOFTWARE` and of a `Server` field.
    public static var serverSoftware: String { "Postern/\(current)" }
}
