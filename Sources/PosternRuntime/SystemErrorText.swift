#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// strerror(3)'s text for an errno value, for the runtime errors' descriptions.
package func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
