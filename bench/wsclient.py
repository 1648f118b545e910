"""A minimal WebSocket client of the agent for `cargo xtask bench` (standard library only).

usage: wsclient.py PORT TOKEN IDLE_SECONDS LATENCY_SAMPLES SETTLE_SECONDS [HOST]

With HOST, it follows that peer of a hub (`/api/v1/ws?host=HOST`).

Connects, reads Hello and the (possibly parted) Snapshot, lets SETTLE_SECONDS pass (the first
delta after connecting shows this client's own new connection, a real change), then counts the
bytes the agent sends while nothing is asked of it for IDLE_SECONDS (keep-alive pings counted
apart), then LATENCY_SAMPLES times opens a listener of its
own and measures how long until a Delta (or Snapshot) shows it. Prints one JSON object.
"""
import base64
import json
import os
import socket
import struct
import sys
import time


class Ws:
    def __init__(self, port, token, host=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /api/v1/ws{'?host=' + host if host else ''} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self.sock.recv(1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"handshake refused: {head!r}")
        self.received = 0
        self.keepalive = 0  # bytes of ping frames (header included)

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        self.received += n
        return data

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def message(self, timeout):
        """The next text message as JSON, or None at the timeout. Answers pings (which do not
        extend the timeout)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.sock.settimeout(remaining)
                b0, b1 = self._exact(2)
                self.sock.settimeout(max(deadline - time.monotonic(), 5))
                length = b1 & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._exact(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._exact(8))[0]
                payload = self._exact(length)
                opcode = b0 & 0x0F
                if opcode == 0x9:
                    self.keepalive += 2 + length
                    self._send(0xA, payload)
                elif opcode == 0x1:
                    return json.loads(payload)
                elif opcode == 0x8:
                    raise EOFError
        except socket.timeout:
            return None


def main():
    port, token, idle, samples = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    settle = float(sys.argv[5])
    ws = Ws(port, token, sys.argv[6] if len(sys.argv) > 6 else None)
    start = time.monotonic()
    ws.message(30)  # Hello
    parts = 0
    while True:
        msg = ws.message(60)
        parts += 1
        if msg is None or not msg.get("more", False):
            break
    snapshot_seconds = time.monotonic() - start
    snapshot_bytes = ws.received
    settled = time.monotonic() + settle
    while time.monotonic() < settled:
        ws.message(max(settled - time.monotonic(), 0.01))
    # Idle: whatever arrives is what the agent sends when nothing changes.
    ws.received = 0
    ws.keepalive = 0
    deltas = 0
    idle_examples = []
    end = time.monotonic() + idle
    while time.monotonic() < end:
        msg = ws.message(max(end - time.monotonic(), 0.01))
        if msg is not None:
            deltas += 1
            if len(idle_examples) < 3:
                idle_examples.append(json.dumps(msg)[:400])
    idle_bytes = ws.received
    idle_keepalive = ws.keepalive
    latencies = []
    for _ in range(samples):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        opened = time.monotonic()
        listener.listen()
        port_open = listener.getsockname()[1]
        seen = None
        while seen is None and time.monotonic() - opened < 30:
            msg = ws.message(30)
            if msg and msg.get("type") in ("Delta", "Snapshot", "SnapshotMore"):
                sockets = msg.get("added", []) + msg.get("sockets", [])
                if any(s["local_port"] == port_open and s["state"] == "LISTEN" for s in sockets):
                    seen = time.monotonic() - opened
        latencies.append(seen * 1000 if seen is not None else None)
        listener.close()
        time.sleep(0.05)
    print(
        json.dumps(
            {
                "snapshot_seconds": snapshot_seconds,
                "snapshot_bytes": snapshot_bytes,
                "snapshot_parts": parts,
                "idle_seconds": idle,
                "idle_bytes": idle_bytes,
                "idle_messages": deltas,
                "idle_keepalive_bytes": idle_keepalive,
                "idle_examples": idle_examples,
                "latency_ms": latencies,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
