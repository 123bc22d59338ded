"""Child processes of the crash tests (run as ``python -m tests.dlq._crash_child MODE ...``).

``writer URL``: four threads add messages as fast as they can; after each add returns, the
line ``<id> <n>`` is printed (and flushed): the parent kills the process at a random moment
and checks that every printed id is stored with its payload.

``worker URL NAME PREFIX``: a worker (lease 0.3 s, batches of 20) whose handler prints
``processed <id>`` and takes 5 ms; after each batch it prints ``batch <resolved>``. It runs
until nothing was due for 0.5 s (longer than the lease).
"""

from __future__ import annotations

import itertools
import sys
import threading
import time

from buttress.dlq import DeadLetterQueue, RedisBackend, SQLiteBackend, Worker

_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print one whole line and flush it."""
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def open_queue(url: str, name: str, prefix: str, **options: object) -> DeadLetterQueue:
    """The queue at ``url`` (a sqlite path after sqlite:///, or a redis URL)."""
    if url.startswith("sqlite:///"):
        backend: object = SQLiteBackend(url.removeprefix("sqlite:///"))
    else:
        backend = RedisBackend(url, name=name, prefix=prefix)
    return DeadLetterQueue(backend, name=name, **options)  # type: ignore[arg-type]


def writer(url: str) -> None:
    """Add messages from four threads forever, printing each id once its add returned."""
    dlq = open_queue(url, "dlq", "")
    counter = itertools.count()

    def loop() -> None:
        while True:
            n = next(counter)
            id = dlq.add({"n": n}, error=ConnectionError("down"), queue="crash")
            say(f"{id} {n}")

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    say("ready")
    threads[0].join()


def worker(url: str, name: str, prefix: str) -> None:
    """Process batches, printing each message handled and each batch's resolved count."""
    dlq = open_queue(url, name, prefix, lease=0.3, batch=20)

    @dlq.handler("crash")
    def handle(letter: object) -> None:
        say(f"processed {letter.id}")
        time.sleep(0.005)

    run = Worker(dlq)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 0.5:
        report = run.process_batch()
        if report.taken:
            say(f"batch {report.resolved}")
            idle_since = time.monotonic()
        else:
            time.sleep(0.02)
    say("done")


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "writer":
        writer(*args)
    else:
        worker(*args)
