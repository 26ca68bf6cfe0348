#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, sends one GET on each and
reads its answer, then holds them all open until stdin closes or a line
arrives. Prints "ready N" once every answer is in. For the idle-connection
memory measurement of scripts/bench-http.sh, and with a fifth argument
"tls" of scripts/bench-https.sh: each connection then completes a TLS
handshake first (certificate not checked; the suites come from
OPENSSL_CONF)."""
import socket
import ssl
import sys

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tls = None
if len(sys.argv) > 5 and sys.argv[5] == "tls":
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
conns = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=10)
    if tls:
        s = tls.wrap_socket(s)
    s.sendall(request)
    conns.append(s)
for s in conns:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("server closed a connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        body += s.recv(4096)
print(f"ready {len(conns)}", flush=True)
sys.stdin.readline()
