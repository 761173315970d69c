"""Helpers shared by the `cartolog` command modules."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeAlias

from domain.values import Actor
from infra.settings import Settings
from infra.wiring import Container, build, load_settings

OPERATOR = Actor(sub="operator:cli")
Handler = Callable[[argparse.Namespace], int]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(RuntimeError):
    """A failure reported to the operator as one line (exit code 1)."""


def group(commands: Commands, name: str, help_text: str) -> Commands:
    """A command group (`cartolog NAME ...`); alone it prints its help. Asked again for the
    same name (several modules add `scenario` commands), it returns the same group."""
    existing = commands.choices.get(name)
    if existing is not None:
        return next(a for a in existing._actions if isinstance(a, argparse._SubParsersAction))
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=lambda _args: _print_help(parser))
    sub: Commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    return sub


def command(commands: Commands, name: str, func: Handler, help_text: str,
            options: Callable[[argparse.ArgumentParser], object] | None = None) -> None:
    """A leaf command with its options."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    if options is not None:
        options(parser)
    parser.set_defaults(func=func)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


class _Process:
    """The one Settings of this `cartolog` process, set by `main` before any command runs."""

    settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Make `settings` the process's Settings (infra.cli.main calls it once)."""
    _Process.settings = settings


def process_settings() -> Settings:
    """The process's Settings (loaded from the environment if main did not set them)."""
    if _Process.settings is None:
        _Process.settings = load_settings()
    return _Process.settings


@contextlib.contextmanager
def container() -> Iterator[Container]:
    """Services built from the process's Settings, closed on exit."""
    built = build(process_settings())
    try:
        yield built
    finally:
        built.close()


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` on SIGTERM or SIGINT while inside the block."""
    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
