# SPDX-License-Identifier: BSD-2-Clause
"""Fixtures: one chand for the session, a fresh connection per test."""

from __future__ import annotations

import gc
from typing import Iterator

import pytest

import chand
from chandtest import Server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    s = Server(unix=True)
    yield s
    assert s.stop() == 0, s.log_text()


@pytest.fixture
def conn(server: Server) -> Iterator[chand.Conn]:
    c = server.dial(client_name="pytest")
    yield c
    c.close()


@pytest.fixture
def conn2(server: Server) -> Iterator[chand.Conn]:
    c = server.dial(client_name="pytest-2")
    yield c
    c.close()


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Collect after every test, so that a socket a test leaves unclosed is
    reported (ResourceWarning) against that test, not a later one."""
    yield
    gc.collect()
