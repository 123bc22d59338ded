"""A second process for the fleet test: ``python -m tests.degrade.flags._worker URL PREFIX``.

It opens the flags at URL (keys under PREFIX), prints ``ready``, waits (in 5 ms steps, at
most 10 s) until the flag ``go`` is on, then creates the flag ``ack`` and exits 0 (1 if ``go``
never came).
"""

from __future__ import annotations

import sys
import time

from buttress.degrade.flags import Flag, FlagStore


def main(url: str, prefix: str) -> int:
    """Wait for ``go``, answer with ``ack``."""
    with FlagStore(url, prefix=prefix) as flags:
        print("ready", flush=True)
        deadline = time.monotonic() + 10.0
        while not flags.enabled("go"):
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.005)
        flags.create(Flag("ack", enabled=True), actor="worker")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
