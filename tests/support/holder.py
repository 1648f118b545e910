"""A separate process that holds sockets for the integration tests.

It opens a TCP listener on 127.0.0.1, a TCP listener on ::1, a UDP socket on 127.0.0.1, a UDP
socket connected to it, and an established loopback connection, prints their ports as one JSON
line, then obeys one command per line on stdin:

  close-listener   close the 127.0.0.1 listener          -> prints "closed"
  listen           open another listener on 127.0.0.1    -> prints its port

It exits when stdin closes, so it never outlives the test that started it.
"""
import json
import socket
import sys

tcp4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp4.bind(("127.0.0.1", 0))
tcp4.listen()

tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
tcp6.bind(("::1", 0))
tcp6.listen()

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))

udp_client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_client.connect(("127.0.0.1", udp.getsockname()[1]))

client = socket.create_connection(("127.0.0.1", tcp4.getsockname()[1]))
server_side, _ = tcp4.accept()

extra = []
print(
    json.dumps(
        {
            "tcp4": tcp4.getsockname()[1],
            "tcp6": tcp6.getsockname()[1],
            "udp": udp.getsockname()[1],
            "client": client.getsockname()[1],
            "udp_client": udp_client.getsockname()[1],
        }
    ),
    flush=True,
)

for line in sys.stdin:
    command = line.strip()
    if command == "close-listener":
        tcp4.close()
        print("closed", flush=True)
    elif command == "listen":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen()
        extra.append(s)
        print(s.getsockname()[1], flush=True)
    else:
        print("unknown command: " + command, file=sys.stderr, flush=True)
