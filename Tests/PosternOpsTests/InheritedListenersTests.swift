import Testing

@testable import Postern
@testable import PosternSupervision

/// The one format listening sockets pass in, between a master and its workers, a process and
/// itself executed again, an old master and a new one.
@Suite struct InheritedListenersTests {
    @Test func listenersMakeTheRoundTripInOrder() throws {
        let listeners: [(String, Int32)] = [("http", 5), ("scgi", 6), ("fastcgi", 17)]
        let text = InheritedListeners.encode(listeners)
        #expect(text == "http=5,scgi=6,fastcgi=17")
        let decoded = try #require(InheritedListeners.decode(text))
        #expect(decoded.map(\.0) == ["http", "scgi", "fastcgi"])
        #expect(decoded.map(\.1) == [5, 6, 17])
        #expect(InheritedListeners.decode("")?.isEmpty == true)
    }

    @Test func aMalformedEntryIsNoListenerList() {
        for text in ["http", "http=", "=5", "http=five", "http=5,scgi", "http=-1", "http=5=6"] {
            #expect(InheritedListeners.decode(text) == nil, "\(text)")
        }
    }
}
