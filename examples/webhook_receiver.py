"""Receive qixin (企信) delivery receipts (回执推送) and verify their signature. Standard library only.

    export QIXIN_APP_KEY=qx... QIXIN_APP_SECRET=...
    python webhook_receiver.py 8080                  # listens on 127.0.0.1:8080 (loopback only)
    python webhook_receiver.py 8080 --host 0.0.0.0   # reachable from other hosts
    # callback URL: http://<this host>:8080/qixin/receipts

qixin POSTs {"events": [...]}, signed like an API request with the key's secret: the path signed is
the callback URL's path and the query is signed as empty. Answer 2xx only once the events are stored;
anything else (or no answer within 5 s) makes qixin retry. Events can arrive more than once: dedupe by
(id, status).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

APP_KEY, SECRET = os.environ["QIXIN_APP_KEY"], os.environ["QIXIN_APP_SECRET"]
SKEW = 300  # seconds
seen: set[tuple[str, str]] = set()  # (event id, status); use your database in production


def valid(headers: dict[str, str], path: str, body: bytes) -> bool:
    ts, nonce, sig = headers.get("x-qx-timestamp", ""), headers.get("x-qx-nonce", ""), headers.get("x-qx-signature")
    if headers.get("x-qx-appkey") != APP_KEY or not ts.isdigit() or not sig or abs(time.time() - int(ts)) > SKEW:
        return False
    canonical = "\n".join(("POST", path, "", ts, nonce, hashlib.sha256(body).hexdigest()))
    expected = hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig.lower())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not valid(headers, urlsplit(self.path).path, body):
            self.send_response(401)
            self.end_headers()
            return
        for event in json.loads(body)["events"]:
            if (event["id"], event["status"]) in seen:
                continue  # a repeated push (at-least-once delivery)
            seen.add((event["id"], event["status"]))
            print(event["type"], event["id"], event["to"], event["status"], event["out_id"], flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="qixin webhook receiver")
    parser.add_argument("port", nargs="?", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    args = parser.parse_args(argv)
    HTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
