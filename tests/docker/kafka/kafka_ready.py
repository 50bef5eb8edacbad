"""Healthcheck of the Kafka stand-in: an ApiVersions request (key 18, v0) answered
without error, i.e. the broker speaks Kafka, not merely accepts connections.
Usage: kafka_ready.py HOST:PORT"""

import socket
import struct
import sys


def api_versions_ok(host: str, port: int) -> bool:
    client_id = b"healthcheck"
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(sock, 4))[0]
        correlation, error = struct.unpack(">ih", _read(sock, size)[:6])
    return correlation == 4242 and error == 0


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    sys.exit(0 if api_versions_ok(host, int(port)) else 1)
