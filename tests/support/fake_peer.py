"""A "peer" that answers every request over HTTPS with an HTML page: what a hub relays from
it must not reach the browser as HTML.

Usage: python3 fake_peer.py CERT.pem KEY.pem. Prints {"port": N} once listening on 127.0.0.1.
"""

import http.server
import json
import ssl
import sys

PAGE = b"<!doctype html><script>alert('served by the peer')</script>"


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
