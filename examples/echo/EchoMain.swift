import Postern
import PosternApps

/// The `echo` demo app as its own binary: the same listener flags as `postern serve`, and a
/// CGI program when a front-end runs it as one.
@main
enum Entry {
    static func main() {
        Gateway.main(Echo())
    }
}
