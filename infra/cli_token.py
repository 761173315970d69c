"""`cartolog token issue`: development tokens from the local issuer."""

from __future__ import annotations

import argparse
import datetime as dt

from adapters.dev_issuer import ROLES
from domain.rules import MAX_NAME, text_problem
from domain.values import TENANT_NAME
from infra.cli_support import CliError, Commands, command, group, process_settings
from infra.wiring import build


def register(commands: Commands) -> None:
    """Add `cartolog token issue`."""
    token = group(commands, "token", "development tokens")
    command(token, "issue", cmd_issue, "print a JWT signed by the local dev issuer", _options)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="tenant the token belongs to")
    parser.add_argument("--role", required=True, choices=ROLES,
                        help="viewer reads; editor also writes; reviewer also approves merge "
                        "requests; admin also manages BI targets")
    parser.add_argument("--sub", help="subject (default dev-ROLE@TENANT)")
    parser.add_argument("--hours", type=float, default=12.0, help="validity (default 12)")


def cmd_issue(args: argparse.Namespace) -> int:
    """Print one token on stdout."""
    settings = process_settings()
    if settings.env != "development":
        raise CliError("token issue only works with CARTOLOG_ENV=development")
    if not (0 < args.hours <= 24 * 366):
        raise CliError("--hours must be positive and at most a year")
    if not TENANT_NAME.fullmatch(args.tenant):
        raise CliError(f"--tenant {args.tenant[:80]!r} is not a tenant name (a DNS label)")
    problem = args.sub is not None and text_problem("--sub", args.sub, MAX_NAME)
    if problem:
        raise CliError(problem)
    services = build(settings)
    print(services.dev_issuer.issue(args.tenant, args.role, args.sub,
                                    dt.timedelta(hours=args.hours)))
    return 0
