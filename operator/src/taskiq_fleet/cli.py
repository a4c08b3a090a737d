"""The ``taskiq-fleet`` command line."""

from __future__ import annotations

import click

from taskiq_fleet import __version__


@click.group()
@click.version_option(__version__, prog_name="taskiq-fleet")
def main() -> None:
    """Elastic Taskiq workers, scaled from Redis queue depth and in-flight work."""
