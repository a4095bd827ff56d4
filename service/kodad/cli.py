"""The `kodad` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import logging
import os
import sys
from pathlib import Path

from kodad import __version__
from kodad.config import ConfigError, ServerConfig

_HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kodad", description="A coding-agent engine over gRPC.")
    parser.add_argument("--version", action="version", version=f"kodad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC service")
    serve.add_argument(
        "--listen", help="host:port to listen on (env KODAD_LISTEN; default 127.0.0.1:50051)"
    )
    serve.add_argument(
        "--data-dir", type=Path, help="where the database lives (env KODAD_DATA_DIR)"
    )
    serve.add_argument("--loop-cap", type=int, help="default loop cap for sessions (default 50)")
    serve.add_argument(
        "--provider-read-timeout",
        type=float,
        help="seconds of silence after which a provider stream fails (default 300)",
    )
    serve.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop" if _HAS_UVLOOP else "asyncio",
        help="the asyncio event loop (uvloop where installed: lower tail latency)",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")

    chat = commands.add_parser("chat", help="talk to a session in this terminal")
    _client_flags(chat)
    which = chat.add_mutually_exclusive_group()
    which.add_argument("--session", help="resume this session (its history is shown)")
    which.add_argument("--new", action="store_true", help="start a new session (the default)")
    chat.add_argument("--workspace", default=".", help="workspace of a new session (default .)")
    chat.add_argument(
        "--mode", choices=("auto", "confirm", "read-only"), default="confirm",
        help="approval mode of a new session (default confirm)",
    )  # fmt: skip

    sessions = commands.add_parser("sessions", help="list, show, delete or export sessions")
    _client_flags(sessions)
    sessions.add_argument("action", choices=("list", "show", "delete", "export"))
    sessions.add_argument("session_id", nargs="?", help="the session (not for list)")
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect", default=os.environ.get("KODAD_CONNECT", "127.0.0.1:50051"),
        help="host:port of the service (env KODAD_CONNECT)",
    )  # fmt: skip
    parser.add_argument(
        "--token", default=os.environ.get("KODAD_TOKEN"), help="bearer token (env KODAD_TOKEN)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "chat":
        from kodad.chat.app import chat

        return asyncio.run(chat(args.connect, args.token, args.session, args.workspace, args.mode))
    if args.command == "sessions":
        from kodad.chat.sessions import sessions

        return asyncio.run(
            sessions(args.connect, args.token, args.action, args.session_id, args.json)
        )
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = ServerConfig.from_env()
    except ConfigError as e:
        logging.getLogger("kodad").error("%s", e)
        return 2
    if args.listen:
        config = dataclasses.replace(config, listen=args.listen)
    if args.data_dir:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    if args.provider_read_timeout:
        config = dataclasses.replace(config, provider_read_timeout_s=args.provider_read_timeout)
    if args.loop_cap:
        engine = dataclasses.replace(config.engine, default_loop_cap=args.loop_cap)
        config = dataclasses.replace(config, engine=engine)
    from kodad.server import serve

    try:
        if args.event_loop == "uvloop":
            import uvloop

            uvloop.run(serve(config))
        else:
            asyncio.run(serve(config))
    except OSError as e:
        logging.getLogger("kodad").error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
