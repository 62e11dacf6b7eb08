#!/usr/bin/env python3
"""floor.py - tools/call round trips straight to a stdio MCP server,
without Omni: the floor the mcp worker's figures are compared with.

  floor.py N INFLIGHT COMMAND [ARGS...]

Spawns COMMAND, does the handshake, then keeps INFLIGHT echo calls in
flight until N have been answered.  Prints {"n","inflight","calls_per_s",
"p50_us","p99_us"}.  Standard library only.
"""
import json
import subprocess
import sys
import time

n, inflight = int(sys.argv[1]), int(sys.argv[2])
p = subprocess.Popen(sys.argv[3:], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def send(m):
    p.stdin.write((json.dumps(m) + "\n").encode())
    p.stdin.flush()


def reply(want):
    while True:
        m = json.loads(p.stdout.readline())
        if m.get("id") == want:
            return m


send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
      "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                 "clientInfo": {"name": "floor", "version": "0"}}})
reply(0)
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
sent = 0
start = {}
lat = []


def call():
    global sent
    sent += 1
    start[sent] = time.perf_counter()
    send({"jsonrpc": "2.0", "id": sent, "method": "tools/call",
          "params": {"name": "echo", "arguments": {"message": "bench"}}})


t0 = time.perf_counter()
for _ in range(min(inflight, n)):
    call()
done = 0
while done < n:
    m = json.loads(p.stdout.readline())
    i = m.get("id")
    if i not in start:
        continue
    lat.append(time.perf_counter() - start.pop(i))
    done += 1
    if sent < n:
        call()
dt = time.perf_counter() - t0
p.stdin.close()
p.wait()
lat.sort()
print(json.dumps({"n": n, "inflight": inflight,
                  "calls_per_s": round(n / dt),
                  "p50_us": round(lat[len(lat) // 2] * 1e6),
                  "p99_us": round(lat[int(len(lat) * 0.99)] * 1e6)}))
