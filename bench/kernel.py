"""Kernel events' figures for `cargo xtask bench` (standard library only).

usage: kernel.py PORT TOKEN CHURN_PER_SECOND CHURN_SECONDS

Follows the agent's WebSocket (wsclient.py's client) and measures, in this order:
  brief    5 listeners that each live 150 ms, then 5 that live no time at all: how many of
           each got both their `opened` and `closed` event
  failures 5 failed binds (EADDRINUSE) and 5 refused connects, each on a port of its own: the
           time from the failing call's return to its event on the stream (ms)
  churn    CHURN_PER_SECOND connections opened and closed per second for CHURN_SECONDS, by a
           child process: how many it made (the agent's losses are read from /metrics by xtask)
Prints one JSON object.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import Ws  # noqa: E402

CHURN = r"""
import socket, sys, threading, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1024)
port = server.getsockname()[1]
def accept():
    while True:
        try:
            c, _ = server.accept()
        except OSError:
            return
        c.close()
threading.Thread(target=accept, daemon=True).start()
made = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    due = start + made / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    try:
        c.connect(("127.0.0.1", port))
    except OSError:
        pass
    c.close()
    made += 1
print(made, time.monotonic() - start, flush=True)
server.close()
"""


def events_for(ws, seconds, want):
    """Events from the stream for `seconds`, or until `want(events so far)` holds."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = ws.message(max(end - time.monotonic(), 0.01))
        if msg and msg.get("type") == "Events":
            for e in msg.get("events", []):
                seen.append((time.monotonic(), e))
            if want(seen):
                break
    return seen


def brief(ws, life):
    ports = []
    for _ in range(5):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        ports.append(s.getsockname()[1])
        if life:
            time.sleep(life)
        s.close()
        time.sleep(0.1)

    def complete(seen):
        done = {(e["local_port"], e["kind"]) for _, e in seen if e.get("pid") == os.getpid()}
        return all((p, k) in done for p in ports for k in ("opened", "closed"))

    seen = events_for(ws, 5, complete)
    done = {(e["local_port"], e["kind"]) for _, e in seen if e.get("pid") == os.getpid()}
    return sum(1 for p in ports if (p, "opened") in done and (p, "closed") in done)


def failure_latency(ws, kind):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    if kind == "bind_failed":
        holder.listen()
        time.sleep(0.2)  # the listener in the model first
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pass
        failed = time.monotonic()
        s.close()
    else:
        holder.close()
        c = socket.socket()
        try:
            c.connect(("127.0.0.1", port))
        except OSError:
            pass
        failed = time.monotonic()
        c.close()
    target = "local_port" if kind == "bind_failed" else "remote_port"
    seen = events_for(
        ws, 5, lambda seen: any(e["kind"] == kind and e.get(target) == port for _, e in seen)
    )
    holder.close()
    for at, e in seen:
        if e["kind"] == kind and e.get(target) == port:
            return (at - failed) * 1000
    return None


def main():
    port, token = int(sys.argv[1]), sys.argv[2]
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    ws = Ws(port, token)
    hello = ws.message(30)
    while True:
        msg = ws.message(60)
        if msg is None or not msg.get("more", False):
            break
    events_for(ws, 2, lambda _: False)
    out = {"changes": hello.get("changes"), "tick_ms": hello.get("tick_ms")}
    out["brief_150ms"] = brief(ws, 0.15)
    out["brief_0ms"] = brief(ws, 0)
    out["bind_failed_ms"] = [failure_latency(ws, "bind_failed") for _ in range(5)]
    out["connect_refused_ms"] = [failure_latency(ws, "connect_refused") for _ in range(5)]
    churn = subprocess.Popen(
        [sys.executable, "-c", CHURN, str(rate), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    while churn.poll() is None:
        ws.message(0.2)
    made, took = churn.stdout.read().split()
    out["churn_connections"] = int(made)
    out["churn_seconds"] = float(took)
    events_for(ws, 2, lambda _: False)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
