"""Load for `cargo xtask bench`: P processes holding N TCP sockets in all (loopback connection
pairs, plus one listener each), optionally churning. Prints {"pids": [...], "sockets": n} once
everything is open, then waits until stdin closes (all children end with it).

usage: load.py SOCKETS PROCESSES [--churn PER_SECOND]

A churning process also restarts a listener of its own once a second (closed, then opened on
another port), as a dev server that reloads does: what the port history records.
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


def main():
    total, procs = int(sys.argv[1]), int(sys.argv[2])
    churn = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--churn" else 0.0
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
    print(json.dumps({"pids": [p for p, _, _ in children], "sockets": per * procs}), flush=True)
    sys.stdin.read()
    for _, w, _ in children:
        os.close(w)
    for pid, _, _ in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
