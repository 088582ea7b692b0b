"""The ``streamwatch`` command line: the entry point, with every command group registered.

Commands stay thin: they parse arguments, call the library and print. Every
user error (a bad argument, setting or event) ends as one line on stderr and
exit status 2, never as a traceback.
"""

from __future__ import annotations

import os
import re
import sys

# Importing a command module registers its commands on the app, in this order in `--help`.
# isort: off
import streamwatch.cli.demo
import streamwatch.cli.data
import streamwatch.cli.replay
import streamwatch.cli.worker
import streamwatch.cli.alerts
import streamwatch.cli.dashboards  # noqa: F401

# isort: on
from streamwatch.cli.app import app
from streamwatch.config.rules import DEFAULT_DOCS_URL, DOCS_URL_ENV
from streamwatch.config.settings import setting_anchor
from streamwatch.errors import StreamwatchError

__all__ = ["app", "main"]


def with_reference(message: str) -> str:
    """An error naming a setting, with a link to that setting in the settings reference (still one line).

    >>> with_reference("invalid setting windows.size_ms: Input should be a valid integer").split(" (see ")[1]
    'http://localhost:8000/reference/settings/#windows.size_ms)'
    """
    named = re.match(r"invalid setting ([^:]+):", message)
    anchor = setting_anchor(named.group(1)) if named else ""
    if not anchor:
        return message
    docs = os.environ.get(DOCS_URL_ENV) or DEFAULT_DOCS_URL
    return f"{message} (see {docs.rstrip('/')}/reference/settings/#{anchor})"


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="streamwatch")
    except StreamwatchError as exc:
        print(f"streamwatch: error: {with_reference(str(exc))}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        # The machine refused a file, a directory or a connection (permissions, a volume owned by root, a full
        # disk): one line naming it, as for any other error a user can act on, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"streamwatch: error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
