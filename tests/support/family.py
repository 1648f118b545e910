"""A process whose sockets change owner, for the collector's equality test.

Before opening any TCP socket it starts a *receiver* (a forked child that takes descriptors
over a Unix socket pair), then opens a listener on 127.0.0.1 and one loopback connection
(client and accepted end), prints {"pid", "receiver", "port", "client"} as one JSON line, and
obeys one command per line on stdin, answering one line each:

  fork         fork a child that inherits every socket        -> the child's pid
  end-child    the child exits (and is reaped)                -> "ended"
  move         send the listener to the receiver (SCM_RIGHTS) and close our copy
                                                              -> "moved"
  churn N      N short-lived children in turn, each opening a listener and exiting at once
               while another is being born (processes exiting mid-scan) -> their pids, joined
               by spaces

It exits when stdin closes; the receiver and any child exit with it.
"""
import json
import os
import socket
import sys
import time

parent_end, receiver_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
receiver = os.fork()
if receiver == 0:
    parent_end.close()
    kept = []
    while True:
        msg, fds, _, _ = socket.recv_fds(receiver_end, 16, 4)
        if not msg:
            os._exit(0)
        kept.extend(fds)
        receiver_end.sendall(b"k")
receiver_end.close()

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()

print(
    json.dumps(
        {
            "pid": os.getpid(),
            "receiver": receiver,
            "port": listener.getsockname()[1],
            "client": client.getsockname()[1],
        }
    ),
    flush=True,
)

child = None
for line in sys.stdin:
    words = line.split()
    if words[0] == "fork":
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(w)
            os.read(r, 1)  # until told to end (or the parent dies)
            os._exit(0)
        os.close(r)
        child_pipe = w
        print(child, flush=True)
    elif words[0] == "end-child":
        os.close(child_pipe)
        os.waitpid(child, 0)
        print("ended", flush=True)
    elif words[0] == "move":
        socket.send_fds(parent_end, [b"l"], [listener.fileno()])
        parent_end.recv(1)
        listener.close()
        print("moved", flush=True)
    elif words[0] == "churn":
        pids = []
        for _ in range(int(words[1])):
            pid = os.fork()
            if pid == 0:
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                s.listen()
                time.sleep(0.005)
                os._exit(0)
            pids.append(pid)
            time.sleep(0.002)
        for pid in pids:
            os.waitpid(pid, 0)
        print(" ".join(map(str, pids)), flush=True)
    else:
        print("unknown command: " + line.strip(), file=sys.stderr, flush=True)
