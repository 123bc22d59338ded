"""Backups: throughput of a full backup and a restore against tar and zstd, the cost of an
incremental, and peak memory.

``backup.tree``: one tree of mixed files (many small text-like files, some medium, a few large;
half compressible, half random), then, interleaved in each round:

- a full backup (``BackupManager.create``, zstd level 3, no encryption) against
  ``tar -cf - . | zstd -3`` of the same tree; target: throughput >= 0.8 of tar and zstd, so
  the time ratio is <= 1.25;
- a restore into an empty directory (checksums verified first) against
  ``zstd -d | tar -x``; target: time ratio <= 1.25;
- an incremental after changing 1% of the files against the full; target: <= 0.10.

Peak RSS of a full backup and of a restore, each run in a child process: target < 200 MiB
(the issue's bound for a 1 GiB tree). The default tree is 128 MiB (about a minute on a loaded
two-core machine); ``python -m bench.backup --size 1GiB`` runs the same on 1 GiB, and
``BUTTRESS_BENCH_BACKUP_SIZE`` sets the size for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._harness import Config, Ctx

__all__ = ["SCENARIOS", "BackupScenario", "make_tree", "run_backup"]

MIB = 1 << 20
DEFAULT_SIZE = 128 * MIB
QUICK_SIZE = 4 * MIB
ROUNDS, QUICK_ROUNDS = 3, 1
RATIO_LIMIT = 1.25  # throughput >= 0.8 of the peer
INCREMENTAL_LIMIT = 0.10
RSS_LIMIT = 200 * MIB
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BackupScenario:
    """A full backup, a restore and an incremental of one tree, against tar and zstd."""

    name: str
    title: str
    notes: tuple[str, ...] = ()
    kind: str = field(default="wall", init=False)  # reported as a wall-clock scenario


TREE = BackupScenario(
    name="backup.tree",
    title="full backup, restore, incremental (1% changed) of a mixed tree vs tar | zstd -3",
    notes=(
        "same tree, same run, rounds interleaved; buttress: zstd level 3, no encryption",
        "restore verifies every artifact's SHA-256 before writing (the peer checks nothing)",
    ),
)


def _words(rng: random.Random, size: int) -> bytes:
    vocabulary = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(2000)
    ]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(vocabulary, k=64)) + b"\n"
    return bytes(out[:size])


def _text(rng: random.Random, pool: bytes, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        n = min(left, len(pool) // 2)
        start = rng.randrange(0, len(pool) - n)
        parts.append(pool[start : start + n])
        left -= n
    return b"".join(parts)


def make_tree(root: Path, size: int, seed: int = 7) -> list[Path]:
    """Write a tree of about ``size`` bytes: 20% in 1-16 KiB files, 40% in 64 KiB-1 MiB
    files, 40% in 4-32 MiB files; half the files text-like, half random. Returns the files."""
    rng = random.Random(seed)
    pool = _words(rng, 4 * MIB)
    files: list[Path] = []
    for share, low, high in (
        (0.2, 1 << 10, 16 << 10),
        (0.4, 64 << 10, MIB),
        (0.4, 4 * MIB, 32 * MIB),
    ):
        budget = int(size * share)
        while budget > 0:
            n = min(budget, rng.randint(low, min(high, max(low, budget))))
            folder = root / f"d{len(files) // 200:03d}" / f"s{len(files) % 7}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"f{len(files):06d}.{'txt' if len(files) % 2 else 'bin'}"
            data = _text(rng, pool, n) if len(files) % 2 else os.urandom(n)
            path.write_bytes(data)
            files.append(path)
            budget -= n
    return files


def _change(files: list[Path], share: float, seed: int) -> int:
    rng = random.Random(seed)
    chosen = rng.sample(files, max(1, int(len(files) * share)))
    for path in chosen:
        size = path.stat().st_size
        path.write_bytes(os.urandom(size))
    return len(chosen)


def _ignore(_: object) -> None:
    pass


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _shell(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, check=True)


# The child reports VmHWM (its own peak RSS): ru_maxrss from wait4 would start from the
# parent's size at fork, which is not what a backup costs.
_CHILD = """
import re, sys
from buttress.backup import BackupManager, Files
work, what, arg = sys.argv[1], sys.argv[2], sys.argv[3]
m = BackupManager(work + "/rss-catalog.db", work + "/rss-store")
if what == "backup":
    m.configure("rss", Files(arg))
    m.create("rss")
else:
    m.restore(m.list("rss")[-1].id, arg)
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024)
"""


def _peak_rss(work: Path, what: str, arg: Path) -> int:
    """Run a backup or a restore in a child process; its peak RSS in bytes."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(work), what, str(arg)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {what} child failed: {done.stderr[-500:]}")
    return int(done.stdout.strip().splitlines()[-1])


def measure(size: int, rounds: int, work: Path) -> dict[str, Any]:
    """Everything the scenario reports, measured in ``work``."""
    from buttress.backup import BackupManager, Files

    source = work / "tree"
    generated = _timed(lambda: make_tree(source, size))
    files = sorted(p for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    times: dict[str, list[float]] = {k: [] for k in ("full", "tar", "restore", "untar", "inc")}
    manager = BackupManager(work / "catalog.db", work / "store")
    manager.configure("bench", Files(source))
    stored = 0
    for r in range(rounds):
        for d in ("out", "untar"):
            shutil.rmtree(work / d, ignore_errors=True)
        (work / "untar").mkdir()
        full = None

        def backup() -> None:
            nonlocal full
            full = manager.create("bench", "full")

        order = [
            ("full", backup),
            ("tar", lambda: _shell(f"tar -cf - . | zstd -3 -q -f -o {work}/peer.tar.zst", source)),
        ]
        for label, fn in order if r % 2 == 0 else reversed(order):
            times[label].append(_timed(fn))
        assert full is not None
        stored = full.size
        restore = [
            ("restore", lambda: _ignore(manager.restore(full.id, work / "out"))),
            (
                "untar",
                lambda: _shell(f"zstd -d -q -c {work}/peer.tar.zst | tar -xf -", work / "untar"),
            ),
        ]
        for label, fn in restore if r % 2 == 0 else reversed(restore):
            times[label].append(_timed(fn))
        changed = _change(files, 0.01, seed=r)
        times["inc"].append(_timed(lambda: manager.create("bench", "incremental")))
    peer_size = (work / "peer.tar.zst").stat().st_size
    shutil.rmtree(work / "out", ignore_errors=True)
    rss_backup = _peak_rss(work, "backup", source)
    rss_restore = _peak_rss(work, "restore", work / "rss-out")
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {
        "full": statistics.median(a / b for a, b in zip(times["full"], times["tar"], strict=True)),
        "restore": statistics.median(
            a / b for a, b in zip(times["restore"], times["untar"], strict=True)
        ),
        "inc": statistics.median(a / b for a, b in zip(times["inc"], times["full"], strict=True)),
    }
    return {
        "bytes": total,
        "files": len(files),
        "changed_files": changed,
        "generated_s": generated,
        "times": times,
        "median_s": med,
        "ratios": paired,
        "stored_bytes": stored,
        "peer_bytes": peer_size,
        "rss_backup": rss_backup,
        "rss_restore": rss_restore,
    }


def _verdict(
    subject: str, peer: str | None, value: float, limit: float, kind: str = "ratio"
) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject": subject,
        "peer": peer,
        "value": value,
        "limit": limit,
        "status": "PASS" if value <= limit else "MISS",
    }


def run_backup(
    scenario: BackupScenario, ctx: Ctx, size: int | None = None, rounds: int | None = None
) -> dict[str, Any]:
    """Measure and judge; the tree lives in a temporary directory removed afterwards."""
    quick = ctx.config.quick
    if size is None:
        env = os.environ.get("BUTTRESS_BENCH_BACKUP_SIZE")
        size = QUICK_SIZE if quick else parse_size(env) if env else DEFAULT_SIZE
    if rounds is None:
        rounds = QUICK_ROUNDS if quick else ROUNDS
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="buttress-bench-backup-") as tmp:
        m = measure(size, rounds, Path(tmp))
    r = m["ratios"]
    mib = m["bytes"] / MIB
    targets = [
        _verdict("buttress full backup", "tar | zstd -3", r["full"], RATIO_LIMIT),
        _verdict("buttress restore", "zstd -d | tar -x", r["restore"], RATIO_LIMIT),
        _verdict("incremental, 1% changed", "full backup", r["inc"], INCREMENTAL_LIMIT),
        _verdict("peak RSS, full backup", None, m["rss_backup"], RSS_LIMIT, "bytes"),
        _verdict("peak RSS, restore", None, m["rss_restore"], RSS_LIMIT, "bytes"),
    ]
    med = m["median_s"]
    return {
        "kind": "wall",
        "title": scenario.title,
        "seconds": time.perf_counter() - started,
        "runs": m["times"]["full"],
        "median_s": med["full"],
        "hung_status": ["-"],
        "overall_status": [f"{t['subject']}: {t['status']}" for t in targets],
        "targets": targets,
        "notes": list(scenario.notes),
        "info": {
            "tree": f"{mib:.0f} MiB in {m['files']} files ({m['changed_files']} changed per round)",
            "rounds": rounds,
            "full_MiB_s": round(mib / med["full"], 1),
            "tar_zstd_MiB_s": round(mib / med["tar"], 1),
            "restore_MiB_s": round(mib / med["restore"], 1),
            "untar_MiB_s": round(mib / med["untar"], 1),
            "incremental_s": round(med["inc"], 3),
            "stored_MiB": round(m["stored_bytes"] / MIB, 1),
            "peer_MiB": round(m["peer_bytes"] / MIB, 1),
            "rss_backup_MiB": round(m["rss_backup"] / MIB, 1),
            "rss_restore_MiB": round(m["rss_restore"] / MIB, 1),
        },
    }


def parse_size(text: str) -> int:
    """``128MiB``, ``1GiB``, ``500M`` or a number of bytes."""
    units = {"k": 1 << 10, "m": MIB, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


SCENARIOS = (TREE,)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.backup [--size 1GiB] [--rounds N] [--json PATH]``: this scenario alone."""
    import asyncio

    from bench._report import format_scenario

    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__)
    parser.add_argument("--size", default="128MiB", help="tree size (128MiB; 1GiB for the target)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"interleaved rounds ({ROUNDS})")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    try:
        result = run_backup(
            TREE, Ctx(loop, Config()), size=parse_size(args.size), rounds=max(1, args.rounds)
        )
    finally:
        loop.close()
    print(format_scenario(TREE.name, result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
