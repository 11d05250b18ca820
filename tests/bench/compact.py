#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""compact: the server's CPU for journal compactions while many ack values are in flight.

    compact.py CHAND CHANNELS VALUES COMPACTIONS

Starts CHAND on a loopback port with a temporary data_dir (journal_compact_min
1M, fsync no), makes CHANNELS durable ack channels and receives VALUES values
from each without acking them (CHANNELS x VALUES in flight), then churns 1 KiB
values through another durable channel until COMPACTIONS compactions have
started (the log's journal-compaction-start). Prints the server's CPU ticks
(10 ms) over the churn: a compaction snapshots each channel's values in
flight, so its cost must grow with the values, not with channels x values.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
import chand  # noqa: E402


def ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> int:
    binary, nchans, nvalues, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    d = tempfile.mkdtemp(prefix="chand-compact.")
    os.mkdir(f"{d}/data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(f"{d}/c.conf", "w") as f:
        f.write(f"data_dir = {d}/data\njournal_compact_min = 1M\nfsync = no\nlog_level = info\n")
    p = subprocess.Popen([binary, "-f", "-c", f"{d}/c.conf", "-l", "127.0.0.1", "-p", str(port)],
                         stderr=open(f"{d}/log", "w"))
    try:
        end = time.monotonic() + 10
        while True:
            try:
                conn = chand.dial(f"127.0.0.1:{port}")
                break
            except chand.DialError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        chans = [conn.make(f"d{i}", nvalues, ack_wait=3000, max_unacked=0, durable=True)
                 for i in range(nchans)]
        for ch in chans:
            for op in [ch.send_async(b"%d" % i) for i in range(nvalues)]:
                op.wait()
        held = [ch.recv_msg() for ch in chans for _ in range(nvalues)]   # in flight, not acked

        def compactions() -> int:
            with open(f"{d}/log") as f:
                return f.read().count("journal-compaction-start")

        churn = conn.make("churn", 1000, durable=True)
        blob = b"x" * 1024
        c0, t0 = compactions(), ticks(p.pid)
        while compactions() - c0 < want:
            for op in [churn.send_async(blob) for _ in range(1000)]:
                op.wait()
            for op in [churn.recv_async() for _ in range(1000)]:
                op.wait()
        print(f"channels={nchans} values={nvalues} in_flight={len(held)} "
              f"compactions={compactions() - c0} ticks={ticks(p.pid) - t0}")
        conn.close()
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
