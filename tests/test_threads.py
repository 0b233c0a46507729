"""The CPU thread policy (ogan_pl.utils.threads): the governor's rules on made-up readings, the fixed
counts, and the real thing giving a thread back when the machine is crowded."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ogan_pl.utils.errors import UserError
from ogan_pl.utils.threads import IDLE, MAX_HOLD, ThreadGovernor, cpu_threads, parse_threads
from tests.conftest import ROOT


class Machine:
    """Readings a test sets tick by tick: idle cores and this process's threads waiting for a core."""

    def __init__(self):
        self.time, self.idle_jiffies, self.waiting_ns = 0.0, 0, 0
        self.set_to: list[int] = []

    def advance(self, idle_cores: float, waiting_threads: float) -> None:
        self.time += 1.0
        self.idle_jiffies += round(idle_cores * os.sysconf("SC_CLK_TCK"))
        self.waiting_ns += round(waiting_threads * 1e9)


def _governor(most=2):
    machine = Machine()
    governor = ThreadGovernor(
        most,
        clock=lambda: machine.time,
        idle=lambda: machine.idle_jiffies,
        waiting=lambda: machine.waiting_ns,
        set_threads=machine.set_to.append,
    )
    return governor, machine


def _run(governor, machine, readings):
    for idle, waiting in readings:
        machine.advance(idle, waiting)
        governor.tick()
    return governor.threads


def test_alone_the_governor_keeps_every_thread():
    governor, machine = _governor()
    assert _run(governor, machine, [(0.0, 0.02)] * 20) == 2 and machine.set_to == []


def test_a_crowded_machine_takes_a_thread_away_and_an_idle_one_gives_it_back():
    governor, machine = _governor()
    assert _run(governor, machine, [(0.0, 0.6)]) == 1  # 3 runnable threads on 2 cores
    assert _run(governor, machine, [(0.0, 0.0)] * 10) == 1  # the busy loop still runs: no idle core
    assert _run(governor, machine, [(1.0, 0.0)]) == 2  # it ended: a core is idle
    assert machine.set_to == [1, 2]


def test_a_thread_that_crowds_the_machine_again_is_tried_ever_more_rarely():
    governor, machine = _governor()
    _run(governor, machine, [(0.0, 0.6)])
    gaps, last_add = [], None
    for tick in range(400):  # another process uses most of a core, in bursts: adding a thread crowds it
        crowded = governor.threads == 2
        _run(governor, machine, [(0.0, 0.6) if crowded else (IDLE, 0.0)])
        if governor.threads == 2:
            if last_add is not None:
                gaps.append(tick - last_add)
            last_add = tick
    assert gaps == sorted(gaps) and gaps[-1] >= MAX_HOLD and len(gaps) < 12


def test_fixed_counts_and_bad_values():
    assert parse_threads("auto") is None and parse_threads(3) == 3
    for bad in (0, -2, "many", 1.5, True):
        with pytest.raises(UserError, match=r"must be|give auto or an integer >= 1"):
            parse_threads(bad)
    before = torch.get_num_threads()
    with cpu_threads(1) as governor:
        assert governor is None and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc")
def test_auto_gives_a_thread_back_while_every_core_is_busy_and_takes_it_again_after(tmp_path):
    """A pure-torch loop under cpu_threads=auto beside one busy loop per core: the count drops to 1 within
    a few seconds (the SIGALRM tick lands inside the loop), and rises again once the loops end."""
    script = textwrap.dedent("""
        import subprocess, sys, time, torch
        from ogan_pl.utils.threads import cpu_threads
        torch.set_num_threads(2)
        a = torch.randn(256, 256)
        with cpu_threads("auto") as governor:
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(CORES)]
            deadline = time.monotonic() + 20
            while governor.threads > 1 and time.monotonic() < deadline:
                a = torch.tanh(a @ a / 256)
            crowded = governor.threads
            for p in busy:
                p.kill(); p.wait()
            deadline = time.monotonic() + 20
            while governor.threads < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            print(crowded, governor.threads, torch.get_num_threads())
        print(torch.get_num_threads())
    """).replace("CORES", str(max(2, os.cpu_count() or 2)))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    crowded, after, torch_threads = done.stdout.split("\n")[0].split()
    assert (crowded, after, torch_threads) == ("1", "2", "2")
    assert done.stdout.split("\n")[1] == "2"  # restored on the way out
