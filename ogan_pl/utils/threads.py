"""How many CPU threads torch uses: `cpu_threads=auto` (the default of every command) or a fixed count.

Why not torch's own default (one thread per core)? Its OpenMP threads spin while they wait for each
other. Alone, that is the fastest; beside one busy process on a 2-core machine, every parallel region
waits for a thread the scheduler put aside, and the work runs many times slower (docs/scaling.md,
"Sharing the CPU"). One thread is safe but slower alone.

`auto` keeps torch's count while the process has the cores to itself and gives threads back while it
does not: once a second (SIGALRM, so the count also changes inside long loops of pure-torch code, and
in the main thread, whose OpenMP settings are the ones torch's work uses) it reads

- how long this process's threads were runnable but waiting for a core (/proc/self/task/*/schedstat):
  on average 0.3 of a thread or more, and it uses one thread fewer;
- how much of the machine was idle (/proc/stat): most of a core for a while, and it uses one more,
  waiting longer after each count that had to be taken back.

`cpu_threads=N`, or OMP_NUM_THREADS set in the environment, fixes the count instead; so does a
machine without /proc or a process where SIGALRM is already taken.
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ogan_pl.utils.errors import UserError

TICK_S = 1.0
CROWDED = 0.3  # threads of this process waiting for a core, on average over a tick
IDLE = 0.75  # idle cores over a tick, needed to add a thread
MAX_HOLD = 64  # ticks between tries to add a thread, at most


def _idle_jiffies() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait ...
    return int(fields[4]) + int(fields[5])


def _waiting_ns() -> int:
    total = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(f"{task.path}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total


class ThreadGovernor:
    """Between 1 and `most` torch threads, by the rules of the module docstring; `tick()` takes one
    reading and applies it (called from the main thread)."""

    def __init__(
        self,
        most: int,
        clock=time.monotonic,
        idle=_idle_jiffies,
        waiting=_waiting_ns,
        set_threads=torch.set_num_threads,
    ):
        self.most, self.threads = most, most
        self._clock, self._idle, self._waiting, self._set = clock, idle, waiting, set_threads
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._hold, self._backoff, self._just_added = 0, 2, False
        self.changes: list[tuple[float, int]] = []  # (time, threads) of every change, for the tests and logs
        self._last = self._read()

    def _read(self) -> tuple[float, int, int]:
        return self._clock(), self._idle(), self._waiting()

    def tick(self) -> None:
        now = self._read()
        seconds = now[0] - self._last[0]
        if seconds <= 0:
            return
        idle_cores = (now[1] - self._last[1]) / self._hz / seconds
        waiting = (now[2] - self._last[2]) / 1e9 / seconds
        self._last = now
        self._hold = max(0, self._hold - 1)
        if waiting >= CROWDED and self.threads > 1:
            if self._just_added:  # the thread just added made it crowded: wait longer before the next try
                self._backoff = min(2 * self._backoff, MAX_HOLD)
            self._change(self.threads - 1)
            self._hold, self._just_added = self._backoff, False
        elif idle_cores >= IDLE and self.threads < self.most and self._hold == 0:
            self._change(self.threads + 1)
            self._just_added = True
        else:
            if self._just_added and self._hold == 0:
                self._backoff = 2  # the added thread stayed: the next try need not wait long
            self._just_added = False

    def _change(self, threads: int) -> None:
        self.threads = threads
        self._set(threads)
        self.changes.append((self._clock(), threads))


def parse_threads(value) -> int | None:
    """None for "auto", else the fixed count (an integer >= 1)."""
    if value in ("auto", None):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"cpu_threads={value}: give auto or an integer >= 1 (torch's CPU threads)")
    return value


def _can_govern() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and Path("/proc/self/task").is_dir()
        and Path("/proc/stat").is_file()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    )


@contextlib.contextmanager
def cpu_threads(value) -> Iterator[ThreadGovernor | None]:
    """The thread policy around one command's work: the fixed count, or the governor (yielded)."""
    fixed = parse_threads(value)
    before = torch.get_num_threads()
    if fixed is not None or "OMP_NUM_THREADS" in os.environ or before == 1 or not _can_govern():
        if fixed is not None:
            torch.set_num_threads(fixed)
        try:
            yield None
        finally:
            torch.set_num_threads(before)
        return
    governor = ThreadGovernor(before)
    signal.signal(signal.SIGALRM, lambda signum, frame: governor.tick())
    signal.siginterrupt(signal.SIGALRM, False)  # system calls the tick lands in are resumed, not failed
    signal.setitimer(signal.ITIMER_REAL, TICK_S, TICK_S)
    try:
        yield governor
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        torch.set_num_threads(before)
