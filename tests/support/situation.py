"""Creates one port situation for the doctor's tests, prints {"port": N, "pid": P} as one JSON
line, and keeps it until stdin closes.

  listen HOST            a TCP listener on HOST, port 0
  listen-at HOST PORT    a TCP listener on HOST:PORT
  stubborn HOST          the same, from a process that ignores SIGTERM
  keep HOST              a TCP listener that accepts connections and keeps them open
  deaf HOST              a listener with a backlog of 1 that never accepts, its queue filled
  http HOST TITLE [FILE] an HTTP server whose page has <title>TITLE</title>; while FILE exists,
                         it answers with the status FILE holds instead of 200
  timewait [reuse]       a port left only in TIME_WAIT (server closed first, listener closed), by
                         a server that set SO_REUSEADDR or (without `reuse`) did not
  child HOST             a child process holds the listener; prints the child's pid
  files DIR              an HTTP server on 127.0.0.1 serving the files in DIR
  many N                 N UDP sockets on 127.0.0.1 (a state too large for one message)
  prefork HOST N         a pre-fork server: a listener on HOST and N workers that inherit it
                         (each ends with its parent)
"""
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading


def listener(host, port=0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen()
    threading.Thread(target=accept_forever, args=(s,), daemon=True).start()
    return s


def quiet_port(s):
    """Binds `s` on 127.0.0.1 to a port below the ephemeral range, free for UDP too: no other
    process gets such a port by binding port 0, so `bind`'s checks on it see only this one."""
    import random

    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first = int(f.read().split()[0])
    for _ in range(500):
        port = random.randrange(max(1025, first - 12000), first)
        try:
            for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                u = socket.socket(family, socket.SOCK_DGRAM)
                if family == socket.AF_INET6:
                    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                u.bind((host, port))
                u.close()
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise SystemExit("no free port below the ephemeral range")


def accept_forever(s):
    """Accepts and closes connections, as a server that answers nothing would."""
    while True:
        try:
            conn, _ = s.accept()
            conn.close()
        except OSError:
            return


def accept_and_keep(s, kept):
    """Accepts connections and keeps them open, as a server with clients does."""
    while True:
        try:
            conn, _ = s.accept()
            kept.append(conn)
        except OSError:
            return


def report(port, pid=None):
    print(json.dumps({"port": port, "pid": pid or __import__("os").getpid()}), flush=True)


mode = sys.argv[1]
keep = []
if mode in ("listen", "stubborn"):
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    s = listener(sys.argv[2])
    keep.append(s)
    report(s.getsockname()[1])
elif mode == "deaf":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sys.argv[2], 0))
    s.listen(1)
    port = s.getsockname()[1]
    # Two connections complete into the queue (backlog + 1); no one accepts them.
    clients = [socket.create_connection((sys.argv[2], port)) for _ in range(2)]
    keep += [s] + clients
    report(port)
elif mode == "keep":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sys.argv[2], 0))
    s.listen()
    keep.append(s)
    threading.Thread(target=accept_and_keep, args=(s, keep), daemon=True).start()
    report(s.getsockname()[1])
elif mode == "close-after":
    # Listens for argv[3] seconds, closes the listener and runs on (no thread waits in
    # accept(), which would keep the socket open past close()).
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sys.argv[2], 0))
    s.listen()
    report(s.getsockname()[1])
    __import__("time").sleep(float(sys.argv[3]))
    s.close()
elif mode == "dial":
    # argv[3] connections to 127.0.0.1:argv[2], held; reports the first one's local port.
    clients = [socket.create_connection(("127.0.0.1", int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
    keep += clients
    report(clients[0].getsockname()[1])
elif mode == "listen-at":
    s = listener(sys.argv[2], int(sys.argv[3]))
    keep.append(s)
    report(s.getsockname()[1])
elif mode == "http":
    title = sys.argv[3]

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<!doctype html><html><head><title>{title}</title></head><body>hi</body></html>".encode()
            status = 200
            if len(sys.argv) > 4:
                try:
                    with open(sys.argv[4]) as f:
                        status = int(f.read())
                except FileNotFoundError:
                    pass
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((sys.argv[2], 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    report(server.server_address[1])
elif mode == "timewait":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sys.argv[2:] == ["reuse"]:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = quiet_port(s)
    s.listen()
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = s.accept()
    conn.close()  # the server side closes first: its end (local port = port) enters TIME_WAIT
    client.recv(1)
    client.close()
    s.close()
    report(port)
elif mode == "many":
    for _ in range(int(sys.argv[2])):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        keep.append(u)
    report(keep[0].getsockname()[1])
elif mode == "files":
    directory = sys.argv[2]

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    report(server.server_address[1])
elif mode == "prefork":
    import ctypes
    import os
    import time

    s = listener(sys.argv[2])
    keep.append(s)
    for _ in range(int(sys.argv[3])):
        if os.fork() == 0:
            # PR_SET_PDEATHSIG: the worker ends with its parent, however that ends.
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)
            while True:
                time.sleep(60)
    report(s.getsockname()[1])
elif mode == "child":
    child = subprocess.Popen(
        [sys.executable, __file__, "listen", sys.argv[2]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = json.loads(child.stdout.readline())
    keep.append(child)
    report(line["port"], line["pid"])
else:
    sys.exit("unknown mode " + mode)

sys.stdin.read()
