"""Timing helpers shared by the benchmark scripts.

The benchmark machine may be shared: other processes can take CPU while a benchmark runs, and on 2
cores that slows torch's OpenMP threads far more than proportionally. Every measurement therefore
records, besides wall time, this process's CPU time and the CPU the REST of the machine used during
it ("others"), read from /proc/stat. Repeated measurements keep the fastest run (the one least
disturbed), and `wait_quiet` can hold a run until the machine is idle.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")
_CPUS = os.cpu_count() or 1


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs) since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


def _own_seconds() -> float:
    """CPU seconds used by this process (all threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Timing:
    wall: float
    cpu: float  # this process's CPU seconds
    others: float  # fraction of the machine's CPU used by other processes meanwhile (0..1)

    def describe(self) -> str:
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU, others {100 * self.others:.0f}%"


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.timing`."""

    def __enter__(self) -> Stopwatch:
        self._busy, self._own, self._t = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._t
        own = _own_seconds() - self._own
        busy = _busy_seconds() - self._busy
        others = max(0.0, busy - own) / max(wall * _CPUS, 1e-9)
        self.timing = Timing(wall, own, min(others, 1.0))


@dataclass
class Series:
    """Repeated timings of one thing; `best` is the fastest run."""

    name: str
    runs: list[Timing] = field(default_factory=list)

    def add(self, timing: Timing) -> None:
        self.runs.append(timing)

    @property
    def best(self) -> Timing:
        return min(self.runs, key=lambda t: t.wall)

    def walls(self) -> str:
        return "/".join(f"{t.wall:.2f}" for t in self.runs)


def others_load(seconds: float = 1.0) -> float:
    """Fraction of the machine's CPU used by other processes over the next `seconds`."""
    with Stopwatch() as sw:
        time.sleep(seconds)
    return sw.timing.others


def wait_quiet(max_wait: float, threshold: float = 0.10, window: float = 2.0) -> float:
    """Wait (at most `max_wait` s) until other processes use under `threshold` of the CPUs over `window`
    seconds; returns the last load seen."""
    deadline = time.monotonic() + max_wait
    load = others_load(window)
    while load >= threshold and time.monotonic() < deadline:
        load = others_load(window)
    return load


def timed(series: Series, fn, quiet_wait: float):
    """Wait (at most `quiet_wait` s) for the other processes to go quiet, then time `fn` into
    `series`; returns what `fn` returned."""
    wait_quiet(quiet_wait, window=1.0)
    with Stopwatch() as sw:
        value = fn()
    series.add(sw.timing)
    return value


def add_run_options(parser, repeat: int, quiet_wait: float) -> None:
    """The options every side-by-side benchmark takes: repetitions, skipping naive, waiting for quiet."""
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each fast path (best is reported)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive path")
    parser.add_argument("--quiet-wait", type=float, default=quiet_wait,
                        help="before each measurement, wait up to this many seconds for other processes to go idle")


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
