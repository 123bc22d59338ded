"""The ``buttress`` command: ``demo``, ``serve``, ``health``, ``config check``, ``config show``
and ``token create``.

The command line uses typer and rich, from the ``cli`` extra; without them ``main`` says which
extra to install and returns 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

MISSING_EXTRA = "buttress: the command line needs the 'cli' extra: pip install 'buttress[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``buttress`` command line with ``argv`` (default ``sys.argv[1:]``); returns the
    exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) > 1 and args[0] == "wal":  # PostgreSQL runs these per WAL segment: start fast
        from buttress.cli._walfast import run as run_wal

        code = run_wal(args[1], args[2:])
        if code is not None:
            return code
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return 2
    from buttress.cli._app import run

    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
