/// Real front-ends (Apache, lighttpd, nginx, HAProxy) started in the foreground on loopback from generated configs.
import Foundation
import PosternCore

/// A real front-end (Apache, lighttpd, nginx or HAProxy) started in the foreground on 127.0.0.1
/// with a configuration generated from the shipped files, and stopped at the end of the test.
public final class FrontEnd: @unchecked Sendable {
    public enum Kind: String, Sendable { case apache, lighttpd, nginx, haproxy }

    public let kind: Kind
    public let port: Int
    public let directory: String
    public let process: ManagedProcess

    init(kind: Kind, port: Int, directory: String, process: ManagedProcess) {
        self.kind = kind
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// The front-end's own error log and output, for failure messages.
    public var logs: String {
        let files = ["apache-error.log", "lighttpd-error.log", "nginx-error.log", "haproxy.cfg", "\(kind.rawValue).log"]
        return files.compactMap { name in
            (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)).map { "== \(name)\n\($0)" }
        }.joined(separator: "\n")
    }

    public func stop() { process.stop() }

    deinit { process.stop() }

    /// Apache httpd with `snippets` (already rendered) included in a minimal server config.
    /// Children run as www-data, as on a real Debian system.
    public static func apache(snippets: [String], directory: String) async throws -> FrontEnd {
        let port = try Ports.free()
        try prepareCommon(directory)
        let modules = [
            "mpm_event", "authz_core", "authz_user", "authn_core", "alias", "env", "setenvif", "mime", "proxy", "proxy_fcgi",
            "proxy_scgi", "proxy_uwsgi", "proxy_http", "proxy_balancer", "slotmem_shm", "lbmethod_byrequests", "proxy_hcheck",
            "cgid", "fcgid", "authnz_fcgi",
        ]
        var config = """
            ServerName 127.0.0.1
            Listen 127.0.0.1:\(port)
            PidFile \(directory)/run/apache.pid
            DefaultRuntimeDir \(directory)/run
            Mutex pthread default
            ErrorLog \(directory)/apache-error.log
            LogLevel warn
            User www-data
            Group www-data
            TypesConfig /etc/mime.types
            DocumentRoot \(directory)/htdocs
            <Directory \(directory)/htdocs>
                Require all granted
            </Directory>
            ScriptSock \(directory)/run/cgid.sock

            """
        for module in modules {
            config += "LoadModule \(module)_module /usr/lib/apache2/modules/mod_\(module).so\n"
        }
        for (index, snippet) in snippets.enumerated() {
            let path = directory + "/snippet-\(index).conf"
            try snippet.write(toFile: path, atomically: true, encoding: .utf8)
            config += "Include \(path)\n"
        }
        try config.write(toFile: directory + "/apache.conf", atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "apache", executable: "/usr/sbin/apache2",
            arguments: ["-f", directory + "/apache.conf", "-DFOREGROUND"],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"],
            directory: directory
        )
        return try await started(FrontEnd(kind: .apache, port: port, directory: directory, process: process))
    }

    /// lighttpd with `snippets` included.
    public static func lighttpd(snippets: [String], directory: String) async throws -> FrontEnd {
        let port = try Ports.free()
        try prepareCommon(directory)
        var config = """
            server.document-root = "\(directory)/htdocs"
            server.bind = "127.0.0.1"
            server.port = \(port)
            server.errorlog = "\(directory)/lighttpd-error.log"
            server.modules = ( "mod_access" )
            mimetype.assign = ( ".txt" => "text/plain" )

            """
        for (index, snippet) in snippets.enumerated() {
            let path = directory + "/snippet-\(index).conf"
            try snippet.write(toFile: path, atomically: true, encoding: .utf8)
            config += "include \"\(path)\"\n"
        }
        try config.write(toFile: directory + "/lighttpd.conf", atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "lighttpd", executable: "/usr/sbin/lighttpd",
            arguments: ["-D", "-f", directory + "/lighttpd.conf"],
            // lighttpd runs as root here and passes its environment to what it spawns (bin-path):
            // allowed for the tests' backends, which a sysadmin would run as www-data instead.
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "POSTERN_ALLOW_ROOT": "true"],
            directory: directory
        )
        return try await started(FrontEnd(kind: .lighttpd, port: port, directory: directory, process: process))
    }

    /// nginx with `snippets`: a snippet with a `server {` block goes in the http context (its
    /// `listen` rewritten to the test port); any other is a location snippet inside one server.
    public static func nginx(snippets: [String], directory: String) async throws -> FrontEnd {
        let port = try Ports.free()
        try prepareCommon(directory)
        for params in ["fastcgi_params", "scgi_params", "uwsgi_params"] {
            try? FileManager.default.copyItem(atPath: "/etc/nginx/" + params, toPath: directory + "/" + params)
        }
        var httpLevel = ""
        var serverLevel = ""
        for (index, snippet) in snippets.enumerated() {
            let path = directory + "/snippet-\(index).conf"
            if snippet.contains("server {") {
                let rewritten = snippet.replacingOccurrences(of: #"listen\s+[^;]+;"#, with: "listen 127.0.0.1:\(port);", options: .regularExpression)
                try rewritten.write(toFile: path, atomically: true, encoding: .utf8)
                httpLevel += "    include \(path);\n"
            } else {
                try snippet.write(toFile: path, atomically: true, encoding: .utf8)
                serverLevel += "        include \(path);\n"
            }
        }
        let server =
            serverLevel.isEmpty
            ? ""
            : """
                server {
                    listen 127.0.0.1:\(port);
                    root \(directory)/htdocs;
            \(serverLevel)    }

            """
        let temp = ["client_body", "fastcgi", "scgi", "uwsgi", "proxy"].map { "    \($0)_temp_path \(directory)/nginx-\($0);" }.joined(separator: "\n")
        let config = """
            daemon off;
            worker_processes 1;
            user www-data;
            pid \(directory)/run/nginx.pid;
            error_log \(directory)/nginx-error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
            \(temp)
            \(httpLevel)\(server)}

            """
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "nginx", executable: "/usr/sbin/nginx",
            arguments: ["-c", directory + "/nginx.conf", "-p", directory],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"],
            directory: directory
        )
        return try await started(FrontEnd(kind: .nginx, port: port, directory: directory, process: process))
    }

    /// HAProxy with a whole configuration file, whose `bind 127.0.0.1:8080` is rewritten to the
    /// test port; its log goes to its standard error (`log stderr`), kept in `haproxy.log`.
    public static func haproxy(config: String, directory: String) async throws -> FrontEnd {
        let port = try Ports.free()
        try prepareCommon(directory)
        guard config.contains("bind 127.0.0.1:8080") else { throw FrontEndError.didNotStart(kind: "haproxy", reason: "no bind 127.0.0.1:8080", logs: "") }
        let rewritten = config.replacingOccurrences(of: "bind 127.0.0.1:8080", with: "bind 127.0.0.1:\(port)")
        try rewritten.write(toFile: directory + "/haproxy.cfg", atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "haproxy", executable: "/usr/sbin/haproxy", arguments: ["-db", "-f", directory + "/haproxy.cfg"],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"], directory: directory)
        return try await started(FrontEnd(kind: .haproxy, port: port, directory: directory, process: process))
    }

    private static func prepareCommon(_ directory: String) throws {
        for sub in ["run", "htdocs"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
    }

    private static func started(_ frontEnd: FrontEnd) async throws -> FrontEnd {
        do {
            try await Wait.forPort(frontEnd.port)
        } catch {
            frontEnd.stop()
            throw FrontEndError.didNotStart(kind: "\(frontEnd.kind)", reason: "\(error)", logs: frontEnd.logs)
        }
        return frontEnd
    }
}
