"""A stand-in for llama.cpp's ``llama-server``, for the fast tests: the same command
line, ``GET /health`` and ``/v1/models``, and chat completions whose ``usage`` and
``timings`` are fixed numbers (40 tokens in 400 ms: 100 tokens/s; 20 prompt tokens
in 50 ms: 400 tokens/s). Exits on SIGTERM or SIGINT; ``--fail`` exits at once."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TIMINGS = {"prompt_n": 20, "prompt_ms": 50.0, "predicted_n": 40, "predicted_ms": 400.0,
           "prompt_per_second": 400.0, "predicted_per_second": 100.0}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--ctx-size")
    p.add_argument("--alias", default="default")
    p.add_argument("--threads")
    p.add_argument("--fail", action="store_true")
    p.add_argument("--load-s", type=float, default=0.2)
    return p.parse_args()


def main() -> None:
    args = _args()
    if args.fail:
        print("error: failed to load model", file=sys.stderr, flush=True)
        sys.exit(3)
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path == "/health":
                ready = time.monotonic() - started >= args.load_s
                self._send(200 if ready else 503,
                           {"status": "ok"} if ready else {"error": {"code": 503}})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": args.alias}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            n = min(int(body.get("max_tokens") or 40), 40)
            timings = dict(TIMINGS, predicted_n=n, predicted_ms=n * 10.0)
            self._send(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "model": args.alias,
                "choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": "word " * n}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n},
                "timings": timings})

    server = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake llama-server listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
