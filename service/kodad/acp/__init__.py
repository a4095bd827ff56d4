"""`kodad acp`: kodad as an Agent Client Protocol agent on stdin/stdout, for editors (Zed,
JetBrains IDEs, Neovim, Emacs...). It drives a kodad service through the gRPC contract:
one given with --connect, or by default a private sidecar it starts and that dies with it."""
