// What an app tells its emperor beside its notifications (AppReport), and how the emperor
// counts it across the app's processes (AppTally): pure values, no process.
import PosternEmperor
import PosternOps
import Testing

@Suite("App reports to the emperor")
struct AppReportTests {
    @Test("the line reads back as it was written, among other notification fields")
    func roundTrip() throws {
        let report = AppReport(start: 1_796_601_600_123, requests: 1200, errors: 3, inFlight: 1, busy: 1, idle: 3)
        #expect(report.line == "X_POSTERN_REPORT=start=1796601600123 requests=1200 errors=3 in_flight=1 busy=1 idle=3")
        #expect(AppReport(datagram: "WATCHDOG=1\nSTATUS=serving: 1200 requests\n" + report.line) == report)
        #expect(AppReport(datagram: "READY=1\nSTATUS=serving") == nil)
    }

    @Test("unknown fields are ignored; a field that is not a count voids the report")
    func lenient() {
        #expect(AppReport(datagram: "X_POSTERN_REPORT=requests=5 later=yes idle=1") == AppReport(requests: 5, idle: 1))
        #expect(AppReport(datagram: "X_POSTERN_REPORT=requests=-5 idle=1") == nil)
        #expect(AppReport(datagram: "X_POSTERN_REPORT=requests=many") == nil)
        #expect(AppReport(datagram: "X_POSTERN_REPORT=requests") == nil)
    }

    @Test("the tally goes on across a reload in place (a new start), a restart and a crash")
    func tally() {
        var tally = AppTally()
        #expect(tally.requests == 0 && tally.current == nil)
        tally.take(AppReport(start: 1, requests: 10, errors: 1, busy: 1))
        tally.take(AppReport(start: 1, requests: 40, errors: 2, idle: 1))
        #expect(tally.requests == 40 && tally.errors == 2)
        // A reload in place: the new image counts from 0, even when it is already past the old.
        tally.take(AppReport(start: 2, requests: 100, errors: 0))
        #expect(tally.requests == 140 && tally.errors == 2)
        // No start said (an older binary): a count going down is a new process.
        tally.take(AppReport(start: 2, requests: 3))
        #expect(tally.requests == 143)
        // The process ends: its counts stay, its workers do not.
        tally.processEnded()
        #expect(tally.requests == 143 && tally.errors == 2 && tally.current == nil)
        tally.processEnded()
        #expect(tally.requests == 143)
        tally.take(AppReport(start: 3, requests: 7, errors: 7, busy: 2))
        #expect(tally.requests == 150 && tally.errors == 9 && tally.current?.busy == 2)
    }
}
