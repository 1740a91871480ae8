// `import Postern` is all an app needs: the gateway contract (Application, Environ, Response,
// Middleware) comes with it.
@_exported import PosternCore
// The runtime's types (ListenerSpec, ListenAddress, GatewayServer, ...) are part of the
// library's API: `Gateway.serve(listeners:configuration:)` takes them.
@_exported import PosternRuntime
