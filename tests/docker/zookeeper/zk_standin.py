"""Answers ZooKeeper's four-letter commands (srvr, ruok) on 2181, nothing else.

The compose healthcheck sends `srvr` and looks for a `Mode:` line; Kafka's stand-in
(Tansu) keeps its metadata itself and never connects here.
"""

import socketserver

REPLIES = {
    b"srvr": b"Zookeeper version: stand-in (no ZooKeeper; Tansu keeps its own metadata)\nMode: standalone\n",
    b"ruok": b"imok",
}


class FourLetter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            word = self.request.recv(4)
        except OSError:
            return
        self.request.sendall(REPLIES.get(word, b""))


if __name__ == "__main__":
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("0.0.0.0", 2181), FourLetter) as server:
        server.serve_forever()
