"""`python -m kodad` and the `kodad` command."""

import os
import sys

# Tools start commands with fork/exec while gRPC threads run. gRPC's fork handlers then run
# in the child between fork and exec and crash it now and then (SIGSEGV: bash "exit code
# -11" with no output, about one command in a few hundred under load). The service never
# forks to keep using gRPC in a child, so its entry point turns the handlers off before grpc
# is imported; importing kodad (the client, say) leaves the host process's environment alone.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")


def main() -> int:
    from kodad.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
