/// Re-exports the front-end launchers (FrontEnd, ManagedProcess, Ports, Wait) the live tests use.
@_exported import PosternFrontEnds
