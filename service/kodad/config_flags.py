"""The `kodad serve` flags as a ServerConfig (on top of the environment's, see config.py)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from kodad.config import ServerConfig, scripted_default
from kodad.domain.access import Limits, ProviderKeys
from kodad.domain.errors import ConfigError
from kodad.engine.budget import PriceTable
from kodad.engine.snapshots import Limits as SnapshotLimits


def from_flags(args: argparse.Namespace) -> ServerConfig:
    """The configuration `kodad serve ARGS` runs with."""
    config = ServerConfig.from_env()
    if args.listen:
        config = dataclasses.replace(config, listen=args.listen)
    if args.data_dir:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    if args.store:
        config = dataclasses.replace(config, store=args.store)
    if args.replica_id:
        config = dataclasses.replace(config, replica_id=args.replica_id)
    if args.lease_ttl:
        config = dataclasses.replace(config, lease_ttl_s=args.lease_ttl)
    if args.provider_read_timeout:
        config = dataclasses.replace(config, provider_read_timeout_s=args.provider_read_timeout)
    default_provider = config.engine.default_provider
    if args.script_json:
        try:
            text = args.script_json.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--script-json {args.script_json}: {e}") from None
        default_provider = scripted_default(text, f"--script-json {args.script_json}")
    prices = args.prices or (Path(p) if (p := os.environ.get("KODAD_PRICES")) else None)
    engine = dataclasses.replace(
        config.engine,
        default_provider=default_provider,
        prices=PriceTable.load(prices) if prices else config.engine.prices,
        snapshot_dir=args.snapshot_dir
        or (Path(s) if (s := os.environ.get("KODAD_SNAPSHOT_DIR")) else None),
        snapshot_limits=SnapshotLimits(args.snapshot_file_limit, args.snapshot_capture_limit),
        default_loop_cap=args.loop_cap or config.engine.default_loop_cap,
        tool_output_limit=args.tool_output_limit,
        profiles_dir=args.profiles_dir or config.engine.profiles_dir,
        provider_keys=_provider_keys(args.provider_key_env, config.engine.provider_keys),
        trusted_workspaces=tuple(args.trust_workspace or ()),
        limits=Limits(
            sessions_per_tenant=args.max_sessions_per_tenant,
            turns=args.max_turns,
            turns_per_tenant=args.max_turns_per_tenant,
            input_bytes=args.max_input_bytes,
            watchers_per_session=args.max_watchers_per_session,
        ),
    )
    security = config.security
    roots = tuple(args.workspace_root) if args.workspace_root else security.workspace_roots
    security = dataclasses.replace(
        security,
        launch_token=_launch_token(args),
        tokens_file=args.tokens_file or security.tokens_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        insecure_no_auth=args.insecure_no_auth,
        workspace_roots=roots,
    )
    sandbox = dataclasses.replace(
        config.sandbox,
        read_paths=tuple(args.sandbox_read) if args.sandbox_read else config.sandbox.read_paths,
        allow_full_access=args.allow_full_access,
        allow_unsandboxed=args.allow_unsandboxed,
    )
    return dataclasses.replace(
        config,
        engine=engine,
        security=security,
        sandbox=sandbox,
        metrics_listen=args.metrics_listen,
        max_message_bytes=args.max_message_bytes,
        idle_timeout_s=args.idle_timeout,
        ready_json=args.ready_json,
        exit_with_parent=args.exit_with_parent,
        allow_private_fetch=args.allow_private_fetch,
    )


def _provider_keys(flags: list[str] | None, default: ProviderKeys) -> ProviderKeys:
    if not flags:
        return default
    try:
        return ProviderKeys((*default.grants, *ProviderKeys.parse(flags)))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _launch_token(args: argparse.Namespace) -> str:
    if args.launch_token_fd is not None:
        try:
            with os.fdopen(args.launch_token_fd, closefd=True) as f:
                token = f.read().strip()
        except OSError as e:
            fd = args.launch_token_fd
            raise ConfigError(f"cannot read the launch token from fd {fd}: {e}") from e
        if not token:
            raise ConfigError(f"fd {args.launch_token_fd} gave an empty launch token")
        return token
    if args.launch_token:
        from kodad.api.auth import new_token

        return new_token()
    return ""
