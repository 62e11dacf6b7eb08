#!/usr/bin/python3
"""report.py - the table of bench/llm/run.sh, and wrk's output as JSON.

  report.py wrk2json < WRK_OUTPUT      one JSON line: requests, secs, rps,
                                       p50/p90/p99 (us), non2xx, socket_errors
  report.py table RESULTS.jsonl        the table of every figure with its
                                       baseline, the difference and the ratio

Each line of RESULTS.jsonl is one step of run.sh: {"step", "result",
"cpu_s": {process: seconds}} for load steps, or the c.streams / o.broker
records.  Steps a.* are JSON replies, b.* streamed ones; .direct. runs hit
nginx, .omni. runs go through the HTTP front (in the broker, or
omni-http with -M process: its CPU is then listed as http), .socket.
through the broker socket (no HTTP front).
"""
import json
import re
import sys

OMNI = ("omni-broker", "omni-http", "omni-llm")


def wrk2json(text):
    """Parse wrk --latency output into a dict."""
    units = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}
    r = {"non2xx": 0, "socket_errors": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    if not m:
        return None
    r["requests"] = int(m.group(1))
    r["secs"] = float(m.group(2)) * units[m.group(3)] / 1e6
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else 0
    for pct, key in (("50", "p50_us"), ("90", "p90_us"), ("99", "p99_us")):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(\w+)" % pct, text, re.M)
        r[key] = round(float(m.group(1)) * units[m.group(2)]) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", text)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def nreq(res):
    """Requests a step handled (warm-up included: CPU covers it too)."""
    for k in ("requests", "sent"):
        if k in res:
            return res[k]
    return 0


def cpu_us(step, procs):
    n = nreq(step["result"])
    if not n:
        return 0.0
    return sum(step["cpu_s"][p] for p in procs) * 1e6 / n


def ratio(a, b):
    return "%.2fx" % (a / b) if b else "-"


def row(name, omni, base, aim="", added=True, fmt="%d"):
    diff = ("%+d" % (omni - base)) if added and base is not None else ""
    print("%-44s %10s %10s %9s %8s  %s" % (
        name, fmt % omni, fmt % base if base is not None else "",
        diff, ratio(omni, base) if base else "", aim))


def judge(ok):
    return "met" if ok else "MISSED"


def errors_of(res):
    e = dict(res.get("errors", {}))
    for k in ("timeouts", "missing", "mismatched", "non2xx",
              "socket_errors"):
        if res.get(k):
            e[k] = res[k]
    return e


def latency_part(p, steps):
    title = {"a": "JSON replies", "b": "streamed replies (SSE)"}[p]
    rates = sorted({int(k.split(".")[2]) for k in steps
                    if k.startswith(p + ".omni.") and
                    k.split(".")[2].isdigit()})
    if not rates and p + ".omni.max" not in steps:
        return
    print()
    print("%s - %s: Omni (HTTP front -> broker -> omni-llm -> nginx) "
          "against nginx direct" % (p, title))
    print("%-44s %10s %10s %9s %8s  %s" % ("figure", "Omni", "direct",
                                           "added", "ratio", "aim"))
    for r in rates:
        o, d = steps["%s.omni.%d" % (p, r)], steps["%s.direct.%d" % (p, r)]
        ro, rd = o["result"], d["result"]
        row("%d/s open loop: achieved req/s" % r, ro["rps"], rd["rps"],
            added=False)
        row("%d/s p50 latency (us)" % r, ro["p50_us"], rd["p50_us"],
            "added <= 150: %s" % judge(ro["p50_us"] - rd["p50_us"] <= 150))
        row("%d/s p90 latency (us)" % r, ro["p90_us"], rd["p90_us"])
        row("%d/s p99 latency (us)" % r, ro["p99_us"], rd["p99_us"],
            "added <= 1000: %s" % judge(ro["p99_us"] - rd["p99_us"] <= 1000))
        row("%d/s max latency (us)" % r, ro["max_us"], rd["max_us"])
        if p == "b":
            row("%d/s time to first event p50 (us)" % r, ro["ttft_p50_us"],
                rd["ttft_p50_us"])
            row("%d/s time to first event p99 (us)" % r, ro["ttft_p99_us"],
                rd["ttft_p99_us"])
        co, cd = cpu_us(o, OMNI), cpu_us(d, ("nginx",))
        row("%d/s CPU per request (us; direct = nginx)" % r, co, cd,
            "< 50: %s" % judge(co < 50), fmt="%.1f")
        print("%-44s broker %.1f, http %.1f, llm %.1f; nginx %.1f us/req; "
              "client lag max %d us / %d us" % (
                  "    split", cpu_us(o, ("omni-broker",)),
                  cpu_us(o, ("omni-http",)), cpu_us(o, ("omni-llm",)),
                  cpu_us(o, ("nginx",)), ro["lag_max_us"],
                  rd["lag_max_us"]))
        for name, res in (("Omni", ro), ("direct", rd)):
            if errors_of(res):
                print("    %s errors: %s" % (name, json.dumps(errors_of(res))))
    o, d = steps.get(p + ".omni.max"), steps.get(p + ".direct.max")
    if o and d:
        ro, rd = o["result"], d["result"]
        row("max throughput, wrk 64 conns (req/s)", ro["rps"], rd["rps"],
            "> 20000: %s" % judge(ro["rps"] > 20000), added=False)
        row("  at max: p50 latency (us)", ro["p50_us"], rd["p50_us"])
        row("  at max: p99 latency (us)", ro["p99_us"], rd["p99_us"])
        co, cd = cpu_us(o, OMNI), cpu_us(d, ("nginx",))
        row("  at max: CPU per request (us)", co, cd,
            "< 50: %s" % judge(co < 50), fmt="%.1f")
        print("%-44s broker %.1f, http %.1f, llm %.1f; nginx %.1f us/req" % (
            "    split", cpu_us(o, ("omni-broker",)),
            cpu_us(o, ("omni-http",)), cpu_us(o, ("omni-llm",)),
            cpu_us(o, ("nginx",))))
        for name, res in (("Omni", ro), ("direct", rd)):
            if errors_of(res):
                print("    %s errors: %s" % (name, json.dumps(errors_of(res))))
    s = steps.get(p + ".socket.max")
    if s and d:
        rs = s["result"]
        row("max via broker socket, no HTTP (req/s)", rs["rps"], rd["rps"],
            added=False)
        cs = cpu_us(s, ("omni-broker", "omni-llm"))
        print("%-44s p50 %d us, p99 %d us; CPU broker+llm %.1f us/req "
              "(broker %.1f, llm %.1f)" % (
                  "    omni-bench 4 conns x 16", rs["p50_us"], rs["p99_us"],
                  cs, cpu_us(s, ("omni-broker",)), cpu_us(s, ("omni-llm",))))
        if errors_of(rs):
            print("    errors: %s" % json.dumps(errors_of(rs)))


def streams_part(c):
    res = c["result"]
    procs = ["omni-broker", "omni-llm"]
    if c["client"] == "http":
        procs.append("omni-http")
    peak = sum(c["rss_peak_kb"][p] for p in procs[:2])
    hwm = sum(c["hwm_kb"][p] for p in procs[:2])
    idle = sum(c["rss_idle_kb"][p] for p in procs[:2])
    ok = res.get("ok", 0)
    print()
    print("c - %d streams of %.0f s held at once through one omni-llm "
          "(client: %s)" % (c["streams"], c["hold_s"], c["client"]))
    print("%-44s %10s %10s %9s %8s  %s" % ("figure", "Omni", "baseline",
                                           "", "", "aim"))
    print("%-44s %10d %10d %9s %8s  %s" % (
        "streams completed (of requested)", ok, c["streams"], "", "",
        judge(ok == c["streams"] and not errors_of(res))))
    print("%-44s %10d %10d" % ("peak in flight at the broker",
                               c["peak_in_flight"], c["streams"]))
    print("%-44s %10d %10d" % ("peak upstream connections at nginx",
                               c["peak_upstream_conns"], c["streams"]))
    print("%-44s %10.1f %10.1f %9s %8s  %s" % (
        "RSS broker + llm, peak (MB; baseline idle)", peak / 1024.0,
        idle / 1024.0, "", ratio(peak, idle),
        "<= 300 MB: %s" % judge(peak / 1024.0 <= 300)))
    print("%-44s %10.1f" % ("VmHWM broker + llm after the run (MB)",
                            hwm / 1024.0))
    print("%-44s %10.1f" % ("  per held stream (kB, peak - idle)",
                            (peak - idle) / max(1, c["streams"])))
    for p in ("omni-broker", "omni-llm", "omni-http"):
        print("%-44s idle %.1f MB, peak %.1f MB, VmHWM %.1f MB" % (
            "    " + p, c["rss_idle_kb"][p] / 1024.0,
            c["rss_peak_kb"][p] / 1024.0, c["hwm_kb"][p] / 1024.0))
    print("%-44s %.1f s wall; client p50 %d us, p99 %d us" % (
        "    run", c["secs"], res.get("p50_us", 0), res.get("p99_us", 0)))
    if errors_of(res):
        print("    errors: %s" % json.dumps(errors_of(res)))


def broker_part(o):
    r = o["result"]
    if "omni_lat" not in r:
        return
    ul, zl, ol, ot = r["unix_lat"], r["zmq_lat"], r["omni_lat"], \
        r["omni_tput"]
    floor50 = ul["p50_us"] + zl["p50_us"]
    floor99 = ul["p99_us"] + zl["p99_us"]
    print()
    print("o - broker only (bench/broker.sh: echo workers, omni-bench)")
    print("%-44s %10s %10s %9s %8s" % ("figure", "Omni", "floor", "added",
                                       "ratio"))
    row("1 in flight p50 (us; floor unix+zmq)", ol["p50_us"], floor50)
    row("1 in flight p99 (us)", ol["p99_us"], floor99)
    row("throughput 4 conns x 64 (req/s)", ot["rps"], None, added=False,
        fmt="%d")


def table(path):
    steps = {}
    for line in open(path):
        d = json.loads(line)
        steps[d["step"]] = d
    for p in ("a", "b"):
        latency_part(p, steps)
    if "c.streams" in steps:
        streams_part(steps["c.streams"])
    if "o.broker" in steps:
        broker_part(steps["o.broker"])


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "wrk2json":
        r = wrk2json(sys.stdin.read())
        if r is None:
            sys.exit(1)
        print(json.dumps(r))
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)


main()
