"""What every sub-command shares: settings and turning our errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from renkei.errors import RenkeiError

__all__ = ["console", "friendly_errors"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`RenkeiError` as one clear message and exit 2, not a stack trace."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RenkeiError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from exc

    return wrapper
