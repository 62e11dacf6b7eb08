#!/usr/bin/env python3
"""http_fake.py - a Streamable HTTP MCP server (handshake era) that
misbehaves on request, for Omni's MCP transport tests.

    http_fake.py --port N [--modern] [--get]

POST /mcp: initialize answers JSON with an Mcp-Session-Id; tools/list
answers as an SSE stream (a non-message event first); notifications and
responses get 202.  GET /mcp: 405 (no notification stream), or with
--get an SSE stream with one notifications/tools/list_changed, closed
after 200 ms.  A request naming an unknown session gets 404.  --modern:
the stateless 2026-07-28 era instead (server/discover, no sessions,
initialize refused, subscriptions/listen held open, the protocol
version checked in _meta).  Tools (tools/call by name):
  echo {text}   the text back
  fail500       HTTP 500 with a JSON-RPC error body ("boom")
  fail503       HTTP 503 with a text body
  empty         HTTP 200 application/json with no body
  big           a JSON reply of 4096 bytes
  gone          forgets every session and answers 404 the first time,
                then answers "after gone"
  sleep {ms}    answers after ms
  bigsse        an SSE reply whose one event is 4096 bytes
  caf\u00e9        {"names": the Mcp-Name headers of the calls so far,
                "lists": how many tools/list requests came}
Standard library only.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
sessions = set()
counter = [0]
gone_calls = [0]
TOOLS = ["echo", "fail500", "fail503", "empty", "big", "gone", "sleep",
         "bigsse", "caf\u00e9"]
MODERN = "--modern" in sys.argv
GET = "--get" in sys.argv
V_MODERN = "2026-07-28"
names = []
lists = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def send(self, status, body=b"", ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def result(self, mid, res, extra=None):
        self.send(200, json.dumps({"jsonrpc": "2.0", "id": mid,
                                   "result": res}).encode(), extra=extra)

    def do_GET(self):
        if not GET:
            return self.send(405, b"", "text/plain")
        note = json.dumps({"jsonrpc": "2.0",
                           "method": "notifications/tools/list_changed"})
        body = ("event: message\ndata: %s\n\n" % note).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        time.sleep(0.2)
        self.close_connection = True

    def do_DELETE(self):
        with lock:
            sessions.discard(self.headers.get("Mcp-Session-Id"))
        self.send(200)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        m = json.loads(self.rfile.read(n))
        method, mid = m.get("method"), m.get("id")
        if MODERN:
            return self.modern(m, method, mid)
        if method == "initialize":
            with lock:
                counter[0] += 1
                sid = "sess-%d" % counter[0]
                sessions.add(sid)
            return self.result(mid, {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "http-fake", "version": "1"}},
                {"Mcp-Session-Id": sid})
        with lock:
            known = self.headers.get("Mcp-Session-Id") in sessions
        if not known:
            return self.send(404, b'{"jsonrpc":"2.0","error":{"code":-32001,'
                             b'"message":"Session not found"}}')
        self.serve(m, method, mid)

    def modern(self, m, method, mid):
        if mid is None or method is None:
            return self.send(202, b"")
        meta = (m.get("params") or {}).get("_meta") or {}
        pv = meta.get("io.modelcontextprotocol/protocolVersion")
        if method == "initialize" or pv != V_MODERN:
            return self.send(200, json.dumps({
                "jsonrpc": "2.0", "id": mid, "error": {
                    "code": -32601 if method == "initialize" else -32022,
                    "message": "no"}}).encode())
        if method == "server/discover":
            return self.result(mid, {
                "supportedVersions": [V_MODERN],
                "capabilities": {"tools": {"listChanged": True}},
                "ttlMs": 0, "cacheScope": "public"})
        if method == "subscriptions/listen":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            time.sleep(60)
            return
        with lock:
            if method == "tools/call":
                names.append(self.headers.get("Mcp-Name"))
        self.serve(m, method, mid)

    def serve(self, m, method, mid):
        if mid is None or method is None:
            return self.send(202, b"")
        if method == "tools/list":
            with lock:
                lists[0] += 1
            tools = [{"name": t, "description": "fake " + t,
                      "inputSchema": {"type": "object"}} for t in TOOLS]
            msg = json.dumps({"jsonrpc": "2.0", "id": mid,
                              "result": {"tools": tools}})
            body = ("event: ping\ndata: {}\n\nevent: message\ndata: %s\n\n"
                    % msg).encode()
            return self.send(200, body, "text/event-stream")
        if method != "tools/call":
            return self.send(200, json.dumps({
                "jsonrpc": "2.0", "id": mid, "error": {
                    "code": -32601, "message": "no " + method}}).encode())
        p = m.get("params") or {}
        name, args = p.get("name"), p.get("arguments") or {}
        text = lambda t: {"content": [{"type": "text", "text": t}]}
        if name == "echo":
            return self.result(mid, text(args.get("text", "")))
        if name == "fail500":
            return self.send(500, json.dumps({
                "jsonrpc": "2.0", "id": mid,
                "error": {"code": -32000, "message": "boom"}}).encode())
        if name == "fail503":
            return self.send(503, b"overloaded", "text/plain")
        if name == "empty":
            return self.send(200, b"")
        if name == "big":
            return self.result(mid, text("x" * 4096))
        if name == "sleep":
            time.sleep(args.get("ms", 1000) / 1000.0)
            return self.result(mid, text("slept"))
        if name == "bigsse":
            msg = json.dumps({"jsonrpc": "2.0", "id": mid,
                              "result": text("y" * 4096)})
            return self.send(200, ("event: message\ndata: %s\n\n"
                                   % msg).encode(), "text/event-stream")
        if name == "caf\u00e9":
            with lock:
                got = {"names": list(names), "lists": lists[0]}
            return self.result(mid, text(json.dumps(got)))
        if name == "gone":
            with lock:
                gone_calls[0] += 1
                first = gone_calls[0] == 1
                if first:
                    sessions.clear()
            if first:
                return self.send(404, b"")
            return self.result(mid, text("after gone"))
        self.send(200, json.dumps({"jsonrpc": "2.0", "id": mid, "error": {
            "code": -32602, "message": "unknown tool"}}).encode())


def main():
    port = int(sys.argv[sys.argv.index("--port") + 1])
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
