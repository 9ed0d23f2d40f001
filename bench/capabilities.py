"""Which parts of the service a figure needs are there yet (other branches bring some)."""

from __future__ import annotations

import argparse

from service.cli import parser


def cli_commands() -> set[str]:
    """The `mappa-record` subcommands this checkout has."""
    for action in parser()._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
