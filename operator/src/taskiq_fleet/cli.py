"""The ``taskiq-fleet`` command line.

Each subcommand lives beside the code it drives and is imported only when it runs, so
``taskiq-fleet local`` works without the operator's Kubernetes dependencies installed.
"""

from __future__ import annotations

import importlib

import click

from taskiq_fleet import __version__

# name -> "module:attribute" of a click.Command
_COMMANDS = {
    "local": "taskiq_fleet.local.command:command",
    "demo": "taskiq_fleet.demo.command:command",
    "operator": "taskiq_fleet.handlers.command:command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="taskiq-fleet")
def main() -> None:
    """Elastic Taskiq workers, scaled from Redis queue depth and in-flight work."""
