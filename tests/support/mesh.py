"""A mesh of processes for the map's browser test: N processes (named `NAME` through prctl, so
that the dashboard's filter finds them), each listening on 127.0.0.1 and holding one connection
to each of the next K processes' listeners, so N * K client -> server edges, each on its own
port pair. Process i works in DIRS[i % len(DIRS)] (their projects). Prints {"pids": [...],
"ports": [...]} as one JSON line once every connection is up, and keeps it all until stdin
closes; its children go with it.

  mesh.py N K NAME DIR...
"""
import ctypes
import json
import os
import signal
import socket
import sys
import threading

n, k, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
dirs = sys.argv[4:] or [os.getcwd()]
libc = ctypes.CDLL(None)
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1


def accept_and_keep(s, kept):
    while True:
        conn, _ = s.accept()
        kept.append(conn)


# Each child listens first and tells the parent its port through a pipe; then it waits for
# the list of all ports, connects to the next K and reports it is done.
children = []
for i in range(n):
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(dirs[i % len(dirs)])
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
        kept = []
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        kept.append(s)
        threading.Thread(target=accept_and_keep, args=(s, kept), daemon=True).start()
        os.write(from_child_w, b"%d\n" % s.getsockname()[1])
        ports = json.loads(os.fdopen(to_child_r).readline())
        for j in range(1, k + 1):
            kept.append(socket.create_connection(("127.0.0.1", ports[(i + j) % n])))
        os.write(from_child_w, b"done\n")
        threading.Event().wait()
    children.append((pid, os.fdopen(to_child_w, "w"), os.fdopen(from_child_r)))

ports = [int(r.readline()) for _, _, r in children]
for _, w, _ in children:
    w.write(json.dumps(ports) + "\n")
    w.flush()
for _, _, r in children:
    assert r.readline().strip() == "done"
print(json.dumps({"pids": [pid for pid, _, _ in children], "ports": ports}), flush=True)
sys.stdin.read()
for pid, _, _ in children:
    os.kill(pid, signal.SIGKILL)
