"""kodad: a coding-agent engine served over gRPC."""

import os

# Tools start commands with fork/exec while gRPC threads run. gRPC's fork handlers then run
# in the child between fork and exec and crash it now and then (SIGSEGV: bash "exit code
# -11" with no output, about one command in a few hundred under load). kodad never forks to
# keep using gRPC in a child, so the handlers are turned off before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

__version__ = "0.1.0"
