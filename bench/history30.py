"""Fills a history file made by the agent (its schema, any version that has these columns) with
DAYS days (30) of a busy machine, for `cargo xtask bench`: 200 listener ports, each restarted
every MINUTES minutes (30) by a process with its own pid, and 50 of them with connections every
minute.

usage: history30.py FILE [DAYS [MINUTES]]
"""
import json
import sqlite3
import sys
import time

PORTS, BUSY = 200, 50
DAYS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
RESTART_MS = (int(sys.argv[3]) if len(sys.argv) > 3 else 30) * 60 * 1000


def main():
    db = sqlite3.connect(sys.argv[1])
    now = int(time.time() * 1000)
    start = now - DAYS * 86_400_000
    start -= start % 60_000
    events, counts = [], []
    pid = 10_000
    for i in range(PORTS):
        port = 8000 + i
        t = start + i * 1000
        while t < now:
            pid += 1
            sid = f"tcp 127.0.0.1:{port} - i{pid}"
            cmd = json.dumps(["node", f"server-{i}.js"])
            for kind, at in (("opened", t), ("closed", t + RESTART_MS - 5000)):
                if at < now:
                    events.append((at, kind, sid, '"tcp"', '"ipv4"', "127.0.0.1", port, pid, "node", cmd, "dev"))
            t += RESTART_MS
    for i in range(BUSY):
        for minute in range(start, now, 60_000):
            counts.append((8000 + i, minute, 12, 4, 1))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO events (time, kind, socket_id, proto, family, local_addr, local_port, pid,"
        " process, cmdline, user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    db.executemany(
        "INSERT OR REPLACE INTO connections (port, minute, accepted, open, peers)"
        " VALUES (?, ?, ?, ?, ?)",
        counts,
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(json.dumps({"events": len(events), "connection_minutes": len(counts)}), flush=True)


if __name__ == "__main__":
    main()
