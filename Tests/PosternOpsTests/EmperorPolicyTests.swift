// The emperor's decisions as pure values (EmperorPolicy, AppFile, DirectoryScan), with a fake
// clock and no process.
import Foundation
import PosternEmperor
import PosternRuntime
import PosternSupervision
import Testing

@Suite("Emperor policy")
struct EmperorPolicyTests {
    typealias Action = EmperorPolicy.Action
    let t0 = ContinuousClock.now

    static func file(_ name: String, _ json: String) throws -> AppFile {
        try AppFile(name: name, path: "/apps/\(name).json", bytes: Array(json.utf8))
    }

    static func processActions(_ actions: [Action]) -> [Action] {
        actions.filter { if case .log = $0 { false } else { true } }
    }

    /// A policy with `names` ready: found, checked, spawned (pid 100, 101, …) and ready.
    func readyPolicy(_ names: [String], maxStarting: Int = 8) throws -> EmperorPolicy {
        var settings = EmperorPolicy.Settings(throttleMaximum: .seconds(60))
        settings.maxStarting = maxStarting
        var policy = EmperorPolicy(settings: settings)
        for (index, name) in names.enumerated() {
            _ = policy.found(try Self.file(name, #"{"http": "127.0.0.1:\#(9000 + index)"}"#), touched: false, now: t0)
        }
        for _ in 0..<(2 * names.count + 2) {
            for action in policy.tick(now: t0) {
                switch action {
                case .check(let file): _ = policy.checked(file.name, hash: file.hash, failure: nil, now: t0)
                case .spawn(let file):
                    let pid = pid_t(100 + names.firstIndex(of: file.name)!)
                    _ = policy.spawned(file.name, pid: pid, now: t0)
                    _ = policy.ready(pid: pid, now: t0)
                default: break
                }
            }
        }
        return policy
    }

    @Test("an app file: the emperor's keys and the listeners taken out, everything else passed on; the listeners become fd:N")
    func appFile() throws {
        let file = try Self.file(
            "shop", #"{"exec": "bin/shop", "http": ["127.0.0.1:8001", "unix:/run/shop.sock"], "scgi": "127.0.0.1:8002", "workers": 2, "socket-mode": "600"}"#)
        #expect(file.exec == "bin/shop")
        #expect(file.listeners.map(\.description) == ["http 127.0.0.1:8001", "http unix:/run/shop.sock", "scgi 127.0.0.1:8002"])
        #expect(file.socketMode == 0o600)
        #expect(file.passedOn == ["workers": .int(2), "socket-mode": .string("600")])
        let written = try JSONSerialization.jsonObject(with: Data(file.configuration(descriptors: [7, 8, 9]))) as! [String: Any]
        #expect(written["http"] as? [String] == ["fd:7", "fd:8"])
        #expect(written["scgi"] as? [String] == ["fd:9"])
        #expect(written["exec"] == nil)
        #expect(written["workers"] as? Int == 2)
        let forCheck = try JSONSerialization.jsonObject(with: Data(file.configuration(descriptors: nil))) as! [String: Any]
        #expect(forCheck["http"] as? [String] == ["127.0.0.1:8001", "unix:/run/shop.sock"])
    }

    @Test("the shipped example app file is an app")
    func shippedExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: root + "/systemd/emperor-apps/hello.json")))
        let file = try AppFile(name: "hello", path: "hello.json", bytes: bytes)
        #expect(file.listeners.map(\.description) == ["http 127.0.0.1:9001", "uwsgi unix:/run/postern-emperor/hello.sock"])
        #expect(file.socketGroup == "www-data")
        #expect(file.passedOn["app"] == .string("hello"))
    }

    @Test("a bad app file is one line naming the file and the key")
    func badAppFiles() {
        let cases: [(String, String)] = [
            ("{\"http\": ", "/apps/a.json: not valid JSON"),
            ("[1, 2]", "/apps/a.json: expected a JSON object of option names and values"),
            (#"{"workers": 2}"#, "/apps/a.json: no listener"),
            (#"{"http": 8080}"#, #"/apps/a.json: key "http": expected a list of addresses, found 8080"#),
            (#"{"http": "fd:3"}"#, #"/apps/a.json: key "http": fd:3: the emperor opens the app's sockets"#),
            (#"{"http": "127.0.0.1:1", "exec": 5}"#, #"/apps/a.json: key "exec": expected a string, found 5"#),
            (#"{"http": "127.0.0.1:1", "socket-mode": "999"}"#, #"/apps/a.json: key "socket-mode": "999" is not an octal mode"#),
            (#"{"http": "127.0.0.1:1", "backlog": 0}"#, #"/apps/a.json: key "backlog": expected an integer from 1 to 65535, found 0"#),
            (#"{"http": "127.0.0.1:1", "scgi": "127.0.0.1:1"}"#, #"/apps/a.json: key "scgi": 127.0.0.1:1 is given twice"#),
        ]
        for (json, expected) in cases {
            do {
                _ = try Self.file("a", json)
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".hasPrefix(expected), "\(json): \(error)")
            }
        }
    }

    @Test("app names: NAME.json with letters, digits, dot, dash and underscore; hidden files and others are not apps")
    func names() {
        #expect(AppFile.name(ofFile: "shop.json") == "shop")
        #expect(AppFile.name(ofFile: "my-app_2.v1.json") == "my-app_2.v1")
        for file in [".shop.json", "shop.json~", "shop.yaml", ".json", "a b.json", "ü.json", "shop.json.swp"] {
            #expect(AppFile.name(ofFile: file) == nil, "\(file)")
        }
    }

    @Test("a scan's changes: new and changed stamps found, missing ones removed")
    func scanChanges() {
        func stamp(_ seconds: Int, _ nanoseconds: Int = 0, inode: UInt = 1) -> DirectoryScan.Stamp {
            let time = timespec(tv_sec: seconds, tv_nsec: nanoseconds)
            return DirectoryScan.Stamp(modified: time, changed: time, size: 10, inode: inode, owner: 0, group: 0)
        }
        let before = ["a": stamp(1), "b": stamp(1), "c": stamp(1)]
        // b touched within the same second, c replaced by a rename, d new, a unchanged, e gone.
        let after = ["a": stamp(1), "b": stamp(1, 500), "c": stamp(1, inode: 2), "d": stamp(2)]
        let changes = DirectoryScan.changes(from: before.merging(["e": stamp(1)]) { $1 }, to: after)
        #expect(changes.found == ["b", "c", "d"])
        #expect(changes.removed == ["e"])
    }

    @Test("at start every app is checked, then started, at most --max-starting at once, and none waits for a throttle")
    func startBounded() throws {
        var settings = EmperorPolicy.Settings(throttleMaximum: .seconds(60))
        settings.maxStarting = 3
        var policy = EmperorPolicy(settings: settings)
        for index in 0..<7 { _ = policy.found(try Self.file("app\(index)", #"{"http": "127.0.0.1:\#(9000 + index)"}"#), touched: false, now: t0) }
        let first = policy.tick(now: t0)
        let checks = first.compactMap { if case .check(let file) = $0 { file } else { nil } }
        #expect(checks.map(\.name) == ["app0", "app1", "app2"])
        #expect(policy.tick(now: t0).isEmpty, "no slot is free")
        _ = policy.checked("app0", hash: checks[0].hash, failure: nil, now: t0)
        // app0 starts (its slot is now a start), nothing else yet.
        let next = Self.processActions(policy.tick(now: t0))
        #expect(next == [.spawn(checks[0])])
        _ = policy.spawned("app0", pid: 100, now: t0)
        #expect(policy.apps["app0"]?.phase.name == "starting")
        _ = policy.ready(pid: 100, now: t0)
        #expect(policy.apps["app0"]?.phase == .ready)
        let after = policy.tick(now: t0).compactMap { if case .check(let file) = $0 { file.name } else { nil } }
        #expect(after == ["app3"])
    }

    @Test("a quick exit backs off 1, 2, 4 s … up to --throttle-max; a touch starts it now; served long enough, it restarts at once")
    func crashLoop() throws {
        var policy = try readyPolicy(["a"])
        var now = t0
        var pid: pid_t = 100
        for (crash, wait) in [1, 2, 4, 8, 16].enumerated() {
            let actions = policy.exited(pid: pid, exit: .code(3), said: "boom", now: now)
            #expect(policy.apps["a"]?.phase == .backoff(until: now + .seconds(wait)), "crash \(crash + 1)")
            #expect(actions.contains { if case .log(.error, let text) = $0 { text.contains("next start in \(wait) s") } else { false } })
            #expect(Self.processActions(policy.tick(now: now + .seconds(wait) - .milliseconds(1))).isEmpty)
            now = now + .seconds(wait)
            let start = Self.processActions(policy.tick(now: now))
            guard case .spawn(let file)? = start.first else {
                Issue.record("no start after the backoff: \(start)")
                return
            }
            #expect(file.name == "a")
            pid += 1
            _ = policy.spawned("a", pid: pid, now: now)
        }
        #expect(policy.apps["a"]?.restarts == 5)
        // In backoff: a touch starts it now, past the backoff, and resets the count.
        _ = policy.exited(pid: pid, exit: .code(3), said: nil, now: now)
        #expect(policy.apps["a"]?.crashes == 6)
        _ = policy.found(try Self.file("a", #"{"http": "127.0.0.1:9000"}"#), touched: true, now: now)
        #expect(policy.apps["a"]?.crashes == 0)
        let touched = Self.processActions(policy.tick(now: now))
        #expect(touched.count == 1, "\(touched)")
        if case .check(let file)? = touched.first { _ = policy.checked("a", hash: file.hash, failure: nil, now: now) }
        #expect(Self.processActions(policy.tick(now: now)).count == 1)
        pid += 1
        _ = policy.spawned("a", pid: pid, now: now)
        _ = policy.ready(pid: pid, now: now)
        // Served for 10 s: its exit restarts it at once, with no backoff.
        now = now + .seconds(11)
        _ = policy.exited(pid: pid, exit: .signal(9), said: nil, now: now)
        #expect(policy.apps["a"]?.phase == .waiting)
        #expect(Self.processActions(policy.tick(now: now)).count == 1)
    }

    @Test("--throttle-max caps the wait")
    func throttleCap() throws {
        var settings = EmperorPolicy.Settings(throttleMaximum: .seconds(3))
        settings.maxStarting = 8
        #expect((1...5).map { settings.throttle.delay(afterCrashes: $0) } == [.seconds(1), .seconds(2), .seconds(3), .seconds(3), .seconds(3)])
    }

    @Test("an edit of a ready app: checked, then SIGHUP to that app alone; other listeners: SIGTERM, then a start on the new sockets")
    func editReloadsOne() throws {
        var policy = try readyPolicy(["a", "b"])
        let edited = try Self.file("a", #"{"http": "127.0.0.1:9000", "workers": 2}"#)
        _ = policy.found(edited, touched: false, now: t0)
        #expect(Self.processActions(policy.tick(now: t0)) == [.check(edited)])
        let applied = Self.processActions(policy.checked("a", hash: edited.hash, failure: nil, now: t0))
        #expect(applied == [.reload(edited, pid: 100)])
        #expect(policy.apps["a"]?.phase.name == "reloading")
        #expect(policy.apps["b"]?.generation == 1, "the other app untouched")
        _ = policy.ready(pid: 100, now: t0)
        #expect(policy.apps["a"]?.phase == .ready)
        #expect(policy.apps["a"]?.generation == 2)

        let moved = try Self.file("a", #"{"http": "127.0.0.1:9100", "workers": 2}"#)
        _ = policy.found(moved, touched: false, now: t0)
        _ = policy.tick(now: t0)
        #expect(Self.processActions(policy.checked("a", hash: moved.hash, failure: nil, now: t0)) == [.signal(100, SIGTERM)])
        #expect(policy.apps["a"]?.phase.name == "reloading")
        _ = policy.exited(pid: 100, exit: .code(0), said: nil, now: t0)
        #expect(Self.processActions(policy.tick(now: t0)) == [.spawn(moved)])
        #expect(policy.apps["a"]?.restarts == 0, "a restart asked for is no crash")
    }

    @Test("a bad edit: the app serves on with its configuration and shows the error; undoing the edit clears it")
    func badEdit() throws {
        var policy = try readyPolicy(["a"])
        let running = policy.apps["a"]!.file!
        let actions = policy.invalid("a", reason: "/apps/a.json: not valid JSON")
        #expect(Self.processActions(actions).isEmpty)
        #expect(policy.apps["a"]?.phase == .ready)
        #expect(policy.apps["a"]?.configError == "/apps/a.json: not valid JSON")
        // A valid file the binary refuses: the same.
        let refused = try Self.file("a", #"{"http": "127.0.0.1:9000", "bogus": 1}"#)
        _ = policy.found(refused, touched: false, now: t0)
        _ = policy.tick(now: t0)
        #expect(Self.processActions(policy.checked("a", hash: refused.hash, failure: "unknown key \"bogus\"", now: t0)).isEmpty)
        #expect(policy.apps["a"]?.configError == "unknown key \"bogus\"")
        #expect(policy.apps["a"]?.pid == 100)
        _ = policy.found(running, touched: false, now: t0)
        #expect(policy.apps["a"]?.configError == nil)
        #expect(Self.processActions(policy.tick(now: t0)).isEmpty, "nothing to reload")
        // A new app whose file is bad has no process: config_error.
        _ = policy.invalid("new", reason: "/apps/new.json: no listener")
        #expect(policy.apps["new"]?.phase == .configError)
    }

    @Test("a removed file: SIGTERM, and its sockets released once it has exited; the emperor's stop: every app, then done")
    func removeAndStop() throws {
        var policy = try readyPolicy(["a", "b", "c"])
        #expect(Self.processActions(policy.removed("a", now: t0)) == [.signal(100, SIGTERM)])
        #expect(policy.apps["a"]?.phase.name == "stopping")
        #expect(Self.processActions(policy.exited(pid: 100, exit: .code(0), said: nil, now: t0)) == [.release("a")])
        #expect(policy.apps["a"] == nil)
        // One that will not stop is killed after the stop timeout.
        _ = policy.stopAll(now: t0)
        #expect(!policy.isDone)
        let late = Self.processActions(policy.tick(now: t0 + policy.settings.stopTimeout))
        #expect(late == [.signal(101, SIGKILL), .signal(102, SIGKILL)])
        _ = policy.exited(pid: 101, exit: .signal(9), said: nil, now: t0)
        _ = policy.exited(pid: 102, exit: .signal(9), said: nil, now: t0)
        #expect(policy.isDone)
    }

    @Test("an app that never says READY=1 is killed after the ready timeout, and backs off")
    func readyTimeout() throws {
        var policy = EmperorPolicy(settings: EmperorPolicy.Settings(throttleMaximum: .seconds(60)))
        let file = try Self.file("a", #"{"http": "127.0.0.1:9000"}"#)
        _ = policy.found(file, touched: false, now: t0)
        _ = policy.tick(now: t0)
        _ = policy.checked("a", hash: file.hash, failure: nil, now: t0)
        _ = policy.tick(now: t0)
        _ = policy.spawned("a", pid: 100, now: t0)
        #expect(Self.processActions(policy.tick(now: t0 + policy.settings.readyTimeout)) == [.signal(100, SIGKILL)])
        _ = policy.exited(pid: 100, exit: .signal(9), said: nil, now: t0 + policy.settings.readyTimeout)
        #expect(policy.apps["a"]?.phase.name == "backoff")
    }

    @Test("on demand: checked, then idle with its sockets open; a connection starts it (whatever the start slots); its idle exit makes it idle again")
    func onDemand() throws {
        var settings = EmperorPolicy.Settings(throttleMaximum: .seconds(60))
        settings.maxStarting = 1
        var policy = EmperorPolicy(settings: settings)
        let file = try Self.file("cold", #"{"http": "127.0.0.1:9000", "on-demand": true, "idle-exit": 5}"#)
        #expect(file.onDemand)
        #expect(file.passedOn["idle-exit"] == .int(5), "the app's own option")
        // Listening at once, before its check.
        #expect(Self.processActions(policy.found(file, touched: false, now: t0)) == [.listen(file)])
        #expect(policy.apps["cold"]?.phase.name == "idle")
        _ = policy.found(try Self.file("zbusy", #"{"http": "127.0.0.1:9001"}"#), touched: false, now: t0)
        #expect(Self.processActions(policy.tick(now: t0)) == [.check(file)], "one slot: the checks wait their turn")
        #expect(Self.processActions(policy.checked("cold", hash: file.hash, failure: nil, now: t0)) == [.listen(file)])
        #expect(policy.apps["cold"]?.phase.name == "idle")
        // The other app takes the one start slot; the connection starts the idle one anyway.
        let busy = Self.processActions(policy.tick(now: t0))
        #expect(busy.count == 1)
        #expect(Self.processActions(policy.connection("cold", now: t0)) == [.spawn(file)])
        _ = policy.spawned("cold", pid: 200, now: t0)
        #expect(Self.processActions(policy.connection("cold", now: t0)).isEmpty, "started once")
        _ = policy.ready(pid: 200, now: t0 + .milliseconds(30))
        #expect(policy.apps["cold"]?.coldStarts == 1)
        #expect(policy.apps["cold"]?.lastColdStart == .milliseconds(30))
        // Its --idle-exit: exit 0 while ready is no crash.
        _ = policy.exited(pid: 200, exit: .code(0), said: nil, now: t0 + .seconds(6))
        #expect(policy.apps["cold"]?.phase == .idle)
        #expect(policy.apps["cold"]?.restarts == 0)
        #expect(policy.apps["cold"]?.idleExits == 1)
        #expect(Self.processActions(policy.connection("cold", now: t0 + .seconds(7))) == [.spawn(file)])
        // A crash backs off, then it is idle again (listening), not started.
        _ = policy.spawned("cold", pid: 201, now: t0 + .seconds(7))
        _ = policy.exited(pid: 201, exit: .code(1), said: nil, now: t0 + .seconds(7))
        #expect(policy.apps["cold"]?.phase.name == "backoff")
        #expect(Self.processActions(policy.tick(now: t0 + .seconds(8))) == [.listen(file)])
        #expect(policy.apps["cold"]?.phase == .idle)
        // The other app's check passes (its start slot frees once it is ready).
        if case .check(let other)? = busy.first { _ = policy.checked(other.name, hash: other.hash, failure: nil, now: t0) }
        // A new on-demand app whose check fails: its sockets close, and it waits for a fix.
        let broken = try Self.file("broken", #"{"http": "127.0.0.1:9003", "on-demand": true, "bogus": 1}"#)
        #expect(Self.processActions(policy.found(broken, touched: false, now: t0)) == [.listen(broken)])
        var checked = false
        var pid: pid_t = 300
        for _ in 0..<6 where !checked {
            for action in policy.tick(now: t0 + .seconds(9)) {
                switch action {
                case .check(let file) where file.name == "broken":
                    #expect(Self.processActions(policy.checked("broken", hash: file.hash, failure: "unknown key", now: t0)) == [.release("broken")])
                    checked = true
                case .check(let file):
                    _ = policy.checked(file.name, hash: file.hash, failure: nil, now: t0)
                case .spawn(let file):
                    pid += 1
                    _ = policy.spawned(file.name, pid: pid, now: t0)
                    _ = policy.ready(pid: pid, now: t0)
                default:
                    break
                }
            }
        }
        #expect(checked)
        #expect(policy.apps["broken"]?.phase == .configError)
        #expect(Self.processActions(policy.connection("broken", now: t0)).isEmpty)
        // idle-exit without on-demand: nothing would start it again.
        #expect(throws: AppFileError.self) { try Self.file("x", #"{"http": "127.0.0.1:9002", "idle-exit": 5}"#) }
    }

    @Test("a file removed and written again while its app stops: it starts again on the new file once stopped")
    func removedThenBack() throws {
        var policy = try readyPolicy(["a"])
        _ = policy.removed("a", now: t0)
        let back = try Self.file("a", #"{"http": "127.0.0.1:9000", "workers": 2}"#)
        _ = policy.found(back, touched: false, now: t0)
        #expect(policy.apps["a"]?.phase.name == "reloading")
        #expect(Self.processActions(policy.exited(pid: 100, exit: .code(0), said: nil, now: t0)).isEmpty, "not released")
        #expect(Self.processActions(policy.tick(now: t0)) == [.check(back)])
        _ = policy.checked("a", hash: back.hash, failure: nil, now: t0)
        #expect(Self.processActions(policy.tick(now: t0)) == [.spawn(back)])
    }

    @Test("an idle on-demand app, or one waiting to restart, keeps its valid file when an edit is refused")
    func refusedEditKeepsTheValidFile() throws {
        var policy = EmperorPolicy(settings: EmperorPolicy.Settings(throttleMaximum: .seconds(60)))
        let file = try Self.file("cold", #"{"http": "127.0.0.1:9000", "on-demand": true}"#)
        _ = policy.found(file, touched: false, now: t0)
        _ = policy.tick(now: t0)
        _ = policy.checked("cold", hash: file.hash, failure: nil, now: t0)
        _ = policy.invalid("cold", reason: "not valid JSON")
        #expect(policy.apps["cold"]?.phase == .idle)
        #expect(policy.apps["cold"]?.configError == "not valid JSON")
        #expect(Self.processActions(policy.connection("cold", now: t0)) == [.spawn(file)])
        // A crash in backoff: a refused edit keeps the file it restarts with.
        _ = policy.spawned("cold", pid: 7, now: t0)
        _ = policy.exited(pid: 7, exit: .code(1), said: nil, now: t0)
        let refused = try Self.file("cold", #"{"http": "127.0.0.1:9000", "on-demand": true, "bogus": 1}"#)
        _ = policy.found(refused, touched: false, now: t0)
        _ = policy.tick(now: t0)
        _ = policy.checked("cold", hash: refused.hash, failure: "unknown key", now: t0)
        #expect(policy.apps["cold"]?.phase != .configError)
        #expect(policy.apps["cold"]?.file == file)
    }
}
