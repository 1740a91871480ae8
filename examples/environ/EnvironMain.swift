import Postern
import PosternApps

/// The `environ` demo app as its own binary: the same listener flags as `postern serve`, and a
/// CGI program when a front-end runs it as one.
///
/// The one example with an `async` `main`, which `Gateway.main` keeps working (the tests run
/// this binary in every mode); the synchronous shape of the others starts faster as a CGI
/// program.
@main
enum Entry {
    static func main() async {
        await Gateway.main(EnvironDump())
    }
}
