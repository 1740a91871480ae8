// Privileges and files, live with real processes: root refused without --user, --user and its
// groups after binding, socket owner and group, --chdir, --umask, --pid-file.
import Foundation
import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

@testable import Postern
@testable import PosternSupervision

extension Ops {
    @Suite("Privileges and files", .serialized)
    struct PrivilegesTests {
        /// `Uid:` or `Gid:` of /proc/PID/status: real, effective, saved, filesystem.
        static func ids(_ pid: Int32, _ field: String) -> [UInt32] {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return [] }
            return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { UInt32($0) }
        }

        static let nobody = getpwnam("nobody").map { $0.pointee.pw_uid }
        static let wwwData = getgrnam("www-data").map { $0.pointee.gr_gid }

        @Test("as root without --user, a unix socket listener is refused with a clear message; --allow-root serves")
        func rootRefused() async throws {
            let directory = try Paths.makeTestDirectory("root-refused")
            var environment = ProcessInfo.processInfo.environment
            environment["POSTERN_ALLOW_ROOT"] = nil
            let process = try ManagedProcess(
                name: "postern", executable: Paths.binary("postern"), arguments: ["serve", "--fastcgi", "unix:\(directory)/app.sock"],
                environment: environment, directory: directory)
            defer { process.stop() }
            let refused = await eventually(10) { !process.isRunning }
            if geteuid() == 0 {
                #expect(refused, "root served a unix socket without --user")
                #expect(process.output.contains("running as root: give --user NAME"), "\(process.output.suffix(800))")
                let allowed = try await OpsServer.start(
                    "root-allowed", ["--fastcgi", "unix:\(directory)/allowed.sock", "--allow-root"], statusPort: false, environment: environment)
                defer { allowed.process.stop() }
                #expect(await allowed.get("/hello").status == 200)
            } else {
                #expect(!refused, "a non-root server was refused: \(process.output.suffix(800))")
            }
        }

        @Test("--user nobody: the listeners bound first, then every id dropped; socket owner, group and mode; --chdir, --umask, --pid-file")
        func dropToUser() async throws {
            let nobody = try #require(Self.nobody)
            let wwwData = try #require(Self.wwwData)
            let directory = try Paths.makeTestDirectory("privileges")
            chmod(directory, 0o777)  // nobody writes the pid file and removes the socket there
            let socket = directory + "/app.sock"
            let pidFile = directory + "/postern.pid"
            let arguments = [
                "--fastcgi", "unix:\(socket)", "--user", "nobody", "--socket-owner", "nobody", "--socket-group", "www-data",
                "--socket-mode", "660", "--chdir", "/tmp", "--umask", "027", "--pid-file", pidFile, "--app", "hello",
            ]
            guard geteuid() == 0 else {
                let server = try? await OpsServer.start("privileges", arguments, statusPort: false)
                defer { server?.process.stop() }
                #expect(await eventually(5) { server.map { $0.process.output.contains("only root can change to another user") } ?? true })
                return
            }
            let server = try await OpsServer.start("privileges", arguments, statusPort: false)
            defer { server.process.stop() }
            let pid = server.process.pid
            // The sockets answer as soon as they are bound; the server writes its pid file as the user.
            #expect(await eventually { FileManager.default.fileExists(atPath: pidFile) }, "\(server.process.output.suffix(1000))")
            #expect(Self.ids(pid, "Uid:") == [nobody, nobody, nobody, nobody], "uids \(Self.ids(pid, "Uid:"))")
            let primary = getpwnam("nobody")!.pointee.pw_gid
            #expect(Self.ids(pid, "Gid:") == [primary, primary, primary, primary], "gids \(Self.ids(pid, "Gid:"))")
            var info = stat()
            #expect(stat(socket, &info) == 0)
            #expect(info.st_uid == nobody && info.st_gid == wwwData, "socket owned by \(info.st_uid):\(info.st_gid)")
            #expect(info.st_mode & 0o777 == 0o660)
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) == "/tmp")
            var pidInfo = stat()
            #expect(stat(pidFile, &pidInfo) == 0 && pidInfo.st_mode & 0o777 == 0o640, "--umask 027: pid file mode \(String(pidInfo.st_mode & 0o777, radix: 8))")
            #expect(pidInfo.st_uid == nobody, "the pid file is written as the user")
            let pidText = try String(contentsOfFile: pidFile, encoding: .utf8)
            #expect(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) == pid)
            // Served through the socket, as nobody.
            let client = try await FastCGIClient.connect(to: .unix(path: socket))
            let result = try await client.send(ClientRequest(method: "GET", target: "/"))
            #expect(String(buffer: result.stdout).contains("Hello, World!"))
            server.signal(SIGTERM)
            #expect(await server.waitForExit(seconds: 15) == 0)
            #expect(!FileManager.default.fileExists(atPath: pidFile), "the pid file outlived the server")
            #expect(!FileManager.default.fileExists(atPath: socket), "the socket file outlived the server")
        }

        @Test(
            "root may serve TCP on loopback without --user: a flag's address, or an inherited socket's own (getsockname); never a unix socket or another address"
        )
        func loopbackListeners() throws {
            let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 9000)
            let v6 = try SocketAddress(ipAddress: "::1", port: 9000)
            let outside = try SocketAddress(ipAddress: "192.0.2.7", port: 9000)
            let unix = try SocketAddress(unixDomainSocketPath: "/run/app.sock")
            func fd(_ address: SocketAddress?) -> Bool {
                Privileges.isLoopback(ListenerSpec(.fastcgi, .fd(0)), localAddress: { _ in address })
            }
            #expect(fd(loopback) && fd(v6))
            #expect(!fd(outside) && !fd(unix) && !fd(nil))
            #expect(Privileges.isLoopback(ListenerSpec(.http, .tcp(host: "127.0.0.2", port: 80))))
            #expect(!Privileges.isLoopback(ListenerSpec(.http, .tcp(host: "0.0.0.0", port: 80))))
            #expect(!Privileges.isLoopback(ListenerSpec(.http, .unix(path: "/run/app.sock"))))
        }

        @Test("--workers with --user: the master keeps its ids and writes the pid file; every worker runs as the user")
        func workersDrop() async throws {
            let nobody = try #require(Self.nobody)
            guard geteuid() == 0 else { return }
            let directory = try Paths.makeTestDirectory("privileges-workers")
            let pidFile = directory + "/postern.pid"
            let server = try await OpsServer.start("privileges-workers", ["--workers", "2", "--user", "nobody", "--pid-file", pidFile])
            defer { server.process.stop() }
            let workers = try await waitForWorkers(server)
            for worker in workers {
                #expect(Self.ids(Int32(worker), "Uid:") == [nobody, nobody, nobody, nobody], "worker \(worker): \(Self.ids(Int32(worker), "Uid:"))")
            }
            #expect(Self.ids(server.process.pid, "Uid:").first == 0)
            #expect(Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) == server.process.pid)
            #expect(await server.get("/hello").status == 200)
        }

        private func waitForWorkers(_ server: OpsServer) async throws -> Set<Int> {
            for _ in 0..<100 {
                let pids = try await server.workerPIDs()
                if pids.count == 2 { return pids }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestFailure("not 2 workers: \(server.process.output.suffix(1500))")
        }

        /// The static executable (docs/service.md) links glibc, whose NSS would load the host's
        /// modules for a name /etc/passwd lacks (`passwd: files systemd`) and crash in them. The
        /// C function the server calls before its lookups, in a program linked `-static`: a
        /// missing user and group are "none", root and localhost are found. Without the call, on
        /// a host whose nsswitch.conf names the systemd module, the same program dies.
        @Test("in a static executable, a missing user or group is not found, not a crash in the host's NSS module")
        func staticExecutableLookups() throws {
            let directory = try Paths.makeTestDirectory("static-nss")
            let source = directory + "/lookups.c"
            try #"""
            #include <grp.h>
            #include <netdb.h>
            #include <pwd.h>
            #include <stdio.h>
            void postern_nss_static_services(void);
            int main(int argc, char **argv) {
                if (argc > 1) postern_nss_static_services();
                struct passwd *user = getpwnam("no-such-user-here");
                struct group *group = getgrnam("no-such-group-here");
                struct passwd *root = getpwnam("root");
                struct addrinfo *info = NULL;
                int resolved = getaddrinfo("localhost", "80", NULL, &info);
                printf("%s %s %s %s\n", user ? "found" : "none", group ? "found" : "none", root ? root->pw_name : "-",
                       resolved == 0 ? "localhost" : gai_strerror(resolved));
                return 0;
            }
            """#.write(toFile: source, atomically: true, encoding: .utf8)
            let socketModule = Paths.root + "/Sources/CPosternSocket"
            let compiled = try runToEnd(
                "/usr/bin/cc", ["-O2", "-static", "-o", directory + "/lookups", source, socketModule + "/CPosternNSS.c", "-I", socketModule + "/include"])
            #expect(compiled.status == 0, "\(compiled.output)")
            let configured = try runToEnd(directory + "/lookups", ["configured"])
            #expect(configured.status == 0)
            #expect(configured.output == "none none root localhost\n")
            let nsswitch = (try? String(contentsOfFile: "/etc/nsswitch.conf", encoding: .utf8)) ?? ""
            let passwd = nsswitch.split(separator: "\n").first { $0.hasPrefix("passwd:") } ?? ""
            if passwd.split(separator: " ").contains("systemd") && FileManager.default.fileExists(atPath: "/lib/x86_64-linux-gnu/libnss_systemd.so.2") {
                #expect(try runToEnd(directory + "/lookups", []).status != 0, "the host's systemd module no longer crashes a static program")
            }
        }
    }
}
