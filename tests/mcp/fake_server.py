#!/usr/bin/env python3
"""fake_server.py - a small stdio MCP server for Omni's MCP tests.

Behaviour is picked by flags, so one file covers the misbehaviours the
tests need that no reference server shows:
  --page N        tools/list pages of N tools (nextCursor)
  --dup           list the tool "dup" twice (a name collision)
  --silent        read stdin, never answer anything
  --modern        speak only the stateless 2026-07-28 era
  --version V     answer initialize with protocol version V
  --early         send notifications/tools/list_changed before the
                  initialize reply
  --pidfile F     write our pid to F
Tools: echo {text}, sleep {ms}, big {bytes} (one reply line that long),
garbage (malformed lines, then the reply), cancelled (ids we were told
about by notifications/cancelled), grow {name} (adds a tool and sends
list_changed).  Standard library only.
"""
import json
import os
import sys
import threading

args = sys.argv[1:]


def flag(name):
    return name in args


def opt(name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    return default


PAGE = int(opt("--page", "0"))
MODERN = flag("--modern")
VERSION = opt("--version")
if opt("--pidfile"):
    with open(opt("--pidfile"), "w") as f:
        f.write(str(os.getpid()))

lock = threading.Lock()
cancelled = []
extra = []


def send(msg):
    with lock:
        sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def tools():
    names = ["echo", "sleep", "big", "garbage", "cancelled", "grow"] + extra
    if flag("--dup"):
        names.append("dup")
        names.insert(0, "dup")
    return [{"name": n, "description": "fake " + n,
             "inputSchema": {"type": "object"}} for n in names]


def result(mid, res):
    if MODERN:
        res = dict(res, resultType="complete",
                   _meta={"io.modelcontextprotocol/serverInfo":
                          {"name": "fake", "version": "0"}})
    send({"jsonrpc": "2.0", "id": mid, "result": res})


def error(mid, code, message, data=None):
    e = {"code": code, "message": message}
    if data is not None:
        e["data"] = data
    send({"jsonrpc": "2.0", "id": mid, "error": e})


def text(s):
    return {"content": [{"type": "text", "text": s}]}


def call(mid, name, a):
    if name == "echo":
        result(mid, text(str(a.get("text", ""))))
    elif name == "sleep":
        def later():
            threading.Event().wait(a.get("ms", 1000) / 1000.0)
            result(mid, text("slept"))
        threading.Thread(target=later, daemon=True).start()
    elif name == "big":
        result(mid, text("x" * int(a.get("bytes", 1 << 20))))
    elif name == "garbage":
        with lock:
            sys.stdout.write("this is not json {\n")
            sys.stdout.write('{"jsonrpc":"1.0","what":"not json-rpc"}\n')
            sys.stdout.write("\n")
            sys.stdout.flush()
        result(mid, text("after garbage"))
    elif name == "cancelled":
        result(mid, text(json.dumps(cancelled)))
    elif name == "grow":
        extra.append(str(a.get("name", "grown")))
        result(mid, text("grown"))
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    else:
        result(mid, dict(text("no tool " + name), isError=True))


def handle(m):
    method = m.get("method")
    mid = m.get("id")
    params = m.get("params") or {}
    if method is None:
        return
    if mid is None:
        if method == "notifications/cancelled":
            cancelled.append(params.get("requestId"))
        return
    meta = params.get("_meta") or {}
    pv = meta.get("io.modelcontextprotocol/protocolVersion")
    if MODERN:
        if method == "initialize":
            error(mid, -32601, "Method not found")
            return
        if pv != "2026-07-28":
            error(mid, -32022, "Unsupported protocol version",
                  {"supported": ["2026-07-28"], "requested": pv})
            return
        if method == "server/discover":
            result(mid, {"supportedVersions": ["2026-07-28"],
                         "capabilities": {"tools": {"listChanged": True}},
                         "ttlMs": 0, "cacheScope": "public"})
            return
        if method == "subscriptions/listen":
            return
    elif method == "server/discover":
        error(mid, -32601, "Method not found")
        return
    if method == "initialize":
        if flag("--early"):
            send({"jsonrpc": "2.0",
                  "method": "notifications/tools/list_changed"})
        result(mid, {"protocolVersion": VERSION or
                     params.get("protocolVersion", "2025-11-25"),
                     "capabilities": {"tools": {"listChanged": True}},
                     "serverInfo": {"name": "fake", "version": "0"}})
    elif method == "ping":
        result(mid, {})
    elif method == "tools/list":
        all_tools = tools()
        start = int(params.get("cursor") or 0)
        page = all_tools[start:start + PAGE] if PAGE else all_tools[start:]
        res = {"tools": page}
        if PAGE and start + PAGE < len(all_tools):
            res["nextCursor"] = str(start + PAGE)
        result(mid, res)
    elif method == "tools/call":
        call(mid, params.get("name"), params.get("arguments") or {})
    else:
        error(mid, -32601, "Method not found")


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if flag("--silent"):
            continue
        line = line.strip()
        if not line:
            continue
        try:
            m = json.loads(line)
        except ValueError:
            error(None, -32700, "Parse error")
            continue
        handle(m)


main()
