"""Alembic migrations of the history store; `alembic_config(url)` builds their Config without an alembic.ini."""
from __future__ import annotations

import sys
from pathlib import Path

from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None, connection=None) -> Config:
    """The Alembic Config of the history store, found relative to this package (any cwd works)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation: a literal % in a URL (escaped password) must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def main(argv: list[str] | None = None) -> None:
    """`python -m include.history.migrations <alembic command> ...` against the deployment's history URL
    (MLPERF_HISTORY_URL, else the SQLite file). Read from the deployment, not the store: the store imports this
    package to migrate."""
    from alembic.config import CommandLine

    from include import deployment

    cli = CommandLine(prog="python -m include.history.migrations")
    options = cli.parser.parse_args(argv if argv is not None else sys.argv[1:])
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(deployment.load().history_url), options)
