# SPDX-License-Identifier: BSD-2-Clause
"""The examples in client/python/examples run against chand and print what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chandtest import Server

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(server: Server, name: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
    r = subprocess.run([sys.executable, str(EXAMPLES / name), f"tcp://{server.addr}"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_pipeline(server: Server) -> None:
    assert run(server, "pipeline.py").splitlines() == [
        "6", "10", "14", "18", "4 stages exited after the pipeline drained",
        "6", "10", "4 stages exited after close(done) with 2 values taken"]


def test_ordone(server: Server) -> None:
    out = run(server, "ordone.py").splitlines()
    assert out == ["a b c a b", "close(done): the range over orDone ended",
                   "orDone: Canceled; myChan's repeat: Canceled"]


def test_fanout(server: Server) -> None:
    out = run(server, "fanout.py")
    assert "168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997" in out
    assert "took 10 primes, all prime, in input order; close(done) stopped the job" in out


@pytest.mark.parametrize("name", ["workers.py"])
def test_workers(server: Server, name: str) -> None:
    out = run(server, name).splitlines()
    assert out == [" ".join(str(i * i) for i in range(10)), "10 results"]


def test_readme_worker_pool(server: Server, tmp_path: Path) -> None:
    """The README's ten-line worker pool, as printed there."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    block = readme.split("## A worker pool in ten lines\n\n```python\n")[1].split("```")[0]
    assert len(block.strip().splitlines()) == 10
    prog = tmp_path / "pool.py"
    prog.write_text(block.replace("tcp://127.0.0.1:7420", f"tcp://{server.addr}"))
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == str(sorted(i * i for i in range(10))) + "\n"
