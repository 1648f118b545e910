"""Load for `cargo xtask bench`: P processes holding N TCP sockets in all (loopback connection
pairs, plus one listener each), optionally churning. Prints {"pids": [...], "sockets": n,
"parent": pid} once everything is open, then waits until stdin closes (all children end with
it, and it ends after them).

usage: load.py SOCKETS PROCESSES [--churn PER_SECOND] [--spawn PER_SECOND]

A churning process also restarts a listener of its own once a second (closed, then opened on
another port), as a dev server that reloads does: what the port history records.

With --spawn, new processes keep appearing: PER_SECOND times a second a short-lived child opens
a listener in a directory of its own (`spawned/N` under the working directory, made for it) and
exits after SPAWN_LIFE seconds. Each is a process the agent has not seen, working in a
directory it has not seen, so each costs the agent a project lookup with nothing cached.
The load works where it is started: its processes' working directory is the caller's.
"""
import json
import os
import socket
import struct
import sys
import time


def leave_no_time_wait(pairs):
    """Closes with a reset (SO_LINGER 0) when the load ends, so that thousands of TIME_WAIT
    sockets do not linger for a minute and show up as changes in the next measurement."""
    for client, _ in pairs:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()


def hold(count, churn):
    """One process: a listener and count // 2 connection pairs (client and accepted end)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    pairs = []
    for _ in range(max(count // 2, 0)):
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        pairs.append((client, server))
    os.write(1, b"ready\n")
    if not churn:
        os.read(0, 1)  # until the parent goes
        leave_no_time_wait(pairs)
        return
    os.set_blocking(0, False)
    restarts = socket.socket()
    restarts.bind(("127.0.0.1", 0))
    restarts.listen()
    replaced = 0
    while True:
        try:
            if os.read(0, 1) == b"":
                leave_no_time_wait(pairs)
                return
        except BlockingIOError:
            pass
        # Replace one pair per tick of 1/churn s: one socket closes, one opens.
        client, server = pairs.pop(0)
        client.close()
        server.close()
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        pairs.append((client, server))
        replaced += 1
        if replaced % max(int(churn), 1) == 0:
            restarts.close()
            restarts = socket.socket()
            restarts.bind(("127.0.0.1", 0))
            restarts.listen()
        time.sleep(1.0 / churn)


SPAWN_LIFE = 2.0


def spawn_one(n):
    """A short-lived holder, as a dev server's restarted worker: a listener, for SPAWN_LIFE s."""
    pid = os.fork()
    if pid == 0:
        try:
            where = os.path.join("spawned", str(n))
            os.makedirs(where, exist_ok=True)
            os.chdir(where)
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            time.sleep(SPAWN_LIFE)
        finally:
            os._exit(0)
    return pid


def spawn_until_stdin_closes(rate):
    """Starts spawn_one RATE times a second until stdin closes, reaping the ones that ended."""
    os.set_blocking(0, False)
    children = []
    n = 0
    while True:
        try:
            if os.read(0, 1) == b"":
                break
        except BlockingIOError:
            pass
        children.append(spawn_one(n))
        n += 1
        children = [c for c in children if os.waitpid(c, os.WNOHANG) == (0, 0)]
        time.sleep(1.0 / rate)
    for c in children:
        os.waitpid(c, 0)


def main():
    total, procs = int(sys.argv[1]), int(sys.argv[2])
    options = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    churn = float(options.get("--churn", 0.0))
    spawn = float(options.get("--spawn", 0.0))
    per = total // procs
    children = []
    for _ in range(procs):
        r, w = os.pipe()  # child's stdin: closes when we exit
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.dup2(r, 0)
            os.dup2(ready_w, 1)
            os.close(w)
            try:
                hold(per - 1, churn)
            finally:
                os._exit(0)
        os.close(r)
        os.close(ready_w)
        children.append((pid, w, ready_r))
    for _, _, ready in children:
        os.read(ready, 6)
    ready = {"pids": [p for p, _, _ in children], "sockets": per * procs, "parent": os.getpid()}
    print(json.dumps(ready), flush=True)
    if spawn:
        spawn_until_stdin_closes(spawn)
    else:
        sys.stdin.read()
    for _, w, _ in children:
        os.close(w)
    for pid, _, _ in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
