# SPDX-License-Identifier: BSD-2-Clause
"""make(..., durable=True), sync and asyncio, against a chand with a data_dir: the
channels (a plain one and an ack one, with its options) and their buffered values
survive a restart of chand on the same data_dir (PROTOCOL.md §16)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile

import pytest

import chand
import chand.aio as aio
from chandtest import Server, unique


def durable_server(data: str) -> Server:
    return Server(f"data_dir = {data}\nfsync = always\n")


def test_durable_make_sync_and_aio_survive_restart() -> None:
    data = tempfile.mkdtemp(prefix="chand-py-data.")
    plain, acked = unique("dur"), unique("durack")
    try:
        srv = durable_server(data)
        try:
            with srv.dial() as c:
                c.make(plain, 4, durable=True).send(b"p1")
                with pytest.raises(chand.Exists):
                    c.make(plain, 4)        # another durability

            async def aio_make() -> None:
                ac = await aio.dial(srv.addr)
                try:
                    ch = await ac.make(acked, 4, ack_wait=5.0, max_deliver=3, durable=True)
                    await ch.send(b"a1")
                finally:
                    await ac.close()
            # a loop of its own: asyncio.run would also unset (and orphan) the
            # thread's current loop, which pytest-asyncio's earlier tests left set
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(aio_make())
            finally:
                loop.close()
        finally:
            assert srv.stop() == 0

        srv = durable_server(data)
        try:
            with srv.dial() as c:
                assert c.open(plain).recv() == (b"p1", True)
                # the same options open it; others are refused: they were kept
                ch = c.make(acked, 4, ack_wait=5.0, max_deliver=3, durable=True)
                with pytest.raises(chand.Exists):
                    c.make(acked, 4, ack_wait=5.0, max_deliver=4, durable=True)
                m = ch.recv_msg()
                assert m.value == b"a1" and m.tag != 0 and m.count == 1
                m.ack()
                with pytest.raises(chand.BadRequest):
                    c.make(None, 4, durable=True)   # anonymous
        finally:
            assert srv.stop() == 0
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_durable_without_data_dir_is_storage(server: Server) -> None:
    with server.dial() as c:
        with pytest.raises(chand.Storage):
            c.make(unique("dur"), 4, durable=True)
    with pytest.raises(ValueError):
        chand._proto.ack_opts(None, 5, 1000, None, 0, durable=1)  # type: ignore[arg-type]
