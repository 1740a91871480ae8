// `import Postern` is all an app needs: the gateway contract (Application, Environ, Response,
// Middleware) comes with it.
@_exported import PosternCore
