import Testing

@testable import Postern
@testable import PosternSupervision

/// The one format listening sockets pass in, between a master and its workers, a process and
/// itself executed again, an old master and a new one.
@Suite struct InheritedListenersTests {
    @Test func listenersMakeTheRoundTripInOrder() throws {
        let listeners: [InheritedListeners.Listener] = [(.http, 5), (.scgi, 6), (.fastcgi, 17), (.uwsgi, 3)]
        let text = InheritedListeners.encode(listeners)
        #expect(text == "http=5,scgi=6,fastcgi=17,uwsgi=3")
        let decoded = try #require(InheritedListeners.decode(text))
        #expect(decoded.map(\.listenerProtocol) == [.http, .scgi, .fastcgi, .uwsgi])
        #expect(decoded.map(\.fd) == [5, 6, 17, 3])
        #expect(InheritedListeners.decode("")?.isEmpty == true)
    }

    @Test func aMalformedEntryIsNoListenerList() {
        // A protocol that is no listener's (CGI is a launch mode) is as malformed as a bad number.
        for text in ["http", "http=", "=5", "http=five", "http=5,scgi", "http=-1", "http=5=6", "cgi=5", "gopher=5", "HTTP=5"] {
            #expect(InheritedListeners.decode(text) == nil, "\(text)")
        }
    }
}
