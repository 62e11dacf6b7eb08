#!/usr/bin/env python3
"""lambda_emu - an emulator of one AWS Lambda execution environment:
the Runtime API (2018-06-01) and the Extensions API (2020-01-01), with
the lifecycle the Lambda docs describe (see deployment/lambda/README.md
and shared/design/reference/LAMBDA.md), for Omni's tests; stdlib only.

    lambda_emu.py --opt DIR --task DIR [--port 0] [--timeout S]
                  [--init-timeout S] [--runtime-first] [--handler NAME]

prints "listening PORT" once it accepts connections.

Behaviour:
  * Init (on the first invoke, and again after a reset): every executable
    in DIR/extensions starts first; once all of them have registered
    (Lambda-Extension-Name must be the file name), DIR_TASK/bootstrap
    starts.  Init ends when the runtime and every extension have called
    next; a /init/error from either, a process that exits, or
    --init-timeout (10 s) fails it.  --runtime-first starts the runtime
    together with the extensions (a runtime faster than its extension).
  * Invoke: the event goes to the runtime's /next; INVOKE (metadata only)
    to the extensions registered for it.  The caller gets the response as
    soon as the runtime posts it, not when extensions finish; the next
    invoke waits until the runtime and the extensions called next again.
    Deadlines are absolute epoch ms (Lambda-Runtime-Deadline-Ms,
    deadlineMs).
  * Response streaming: a POST with Lambda-Runtime-Function-Response-Mode:
    streaming is read chunk by chunk and passed on to the caller as it
    arrives (chunked), with the runtime's trailers
    (Lambda-Runtime-Function-Error-Type/-Body) passed on as trailers.
  * Errors: /invocation/ID/error gives the caller 200 with
    X-Amz-Function-Error: Unhandled and the error JSON, as Lambda does.
  * Timeout: past the deadline the caller gets Sandbox.Timedout; then the
    environment resets: runtime SIGKILLed, SHUTDOWN (reason timeout) to the
    extensions, which have 2 s before SIGKILL.
  * Shutdown (POST /_emu/shutdown, or SIGTERM to the emulator): SIGTERM to
    the runtime (SIGKILL after 300 ms), SHUTDOWN with deadlineMs now+2 s to
    the extensions, SIGKILL of everything left at the deadline.  Every
    process of the environment (each started in its own session) is
    killed at the end, as Lambda discards the sandbox.

Test API: POST /_emu/invoke (body = event; X-Emu-Timeout-Ms overrides
--timeout), GET /_emu/state (init timings, init errors, invocations,
shutdowns), POST /_emu/shutdown.  invoke() below is a client that also
reads the trailers.
"""
import argparse
import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHUTDOWN_MS = 2000      # with external extensions
RUNTIME_TERM_MS = 300   # SIGTERM to SIGKILL for the runtime at shutdown


def now_ms():
    return int(time.time() * 1000)


def mono():
    return time.monotonic()


class Invocation:
    def __init__(self, event, timeout_ms):
        self.id = str(uuid.uuid4())
        self.event = event
        self.deadline_ms = now_ms() + timeout_ms
        self.trace = "Root=1-%08x-%s;Parent=%s;Sampled=1" % (
            int(time.time()), uuid.uuid4().hex[:24], uuid.uuid4().hex[:16])
        self.out = queue.Queue()    # items for the caller
        self.answered = False       # the runtime posted a response/error
        self.record = {"id": self.id, "deadline_ms": self.deadline_ms,
                       "outcome": None, "mode": "buffered", "chunks": 0,
                       "bytes": 0, "error_type": None, "trailers": {}}


class Env:
    """One execution environment: processes, queues, phase tracking."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.invoke_lock = threading.Lock()
        self.port = 0
        self.state = {"inits": [], "invocations": [], "shutdowns": [],
                      "register_errors": []}
        self.reset_vars()

    def reset_vars(self):
        self.gen = getattr(self, "gen", 0) + 1
        self.status = "cold"          # cold, init, ready, failed, down
        self.procs = {}               # name -> Popen
        self.exts = {}                # id -> {"name", "events", "q", "next"}
        self.ext_names = []
        self.rt_q = queue.Queue()
        self.rt_waiting = False
        self.current = None           # Invocation in progress
        self.busy = False             # an invoke phase is open
        self.init_error = None
        self.init = None

    # ----------------------------------------------------------- processes
    def base_env(self):
        e = dict(os.environ)
        e.update({
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % self.port,
            "AWS_LAMBDA_FUNCTION_NAME": "omni-test",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        })
        return e

    def spawn(self, name, path, env):
        try:
            p = subprocess.Popen([path], env=env, start_new_session=True,
                                 stdin=subprocess.DEVNULL)
        except OSError as e:
            self.init_error = {
                "errorType": ("Runtime.InvalidEntrypoint" if name ==
                              "runtime" else "Extension.LaunchError"),
                "errorMessage": "cannot start %s: %s" % (path, e)}
            self.status = "failed"
            return None
        self.procs[name] = p
        threading.Thread(target=self.watch, args=(name, p, self.gen),
                         daemon=True).start()
        return p

    def watch(self, name, p, gen):
        rc = p.wait()
        with self.cv:
            if gen != self.gen:
                return
            self.init and self.init.setdefault("exits", {}).__setitem__(
                name, rc)
            if self.status == "init":
                self.init_error = {
                    "errorType": ("Runtime.ExitError" if name == "runtime"
                                  else "Extension.Crash"),
                    "errorMessage": "%s exited with status %s during init"
                    % (name, rc)}
                self.status = "failed"
            elif self.status == "ready":
                self.status = "failed"
                inv = self.current
                if inv and not inv.answered:
                    inv.answered = True
                    inv.out.put(("error", {
                        "errorType": ("Runtime.ExitError" if name ==
                                      "runtime" else "Extension.Crash"),
                        "errorMessage": "%s exited with status %s" %
                        (name, rc)}))
            self.cv.notify_all()

    def kill_all(self):
        """SIGKILL every process of the environment (their sessions)."""
        sids = set()
        for p in self.procs.values():
            sids.add(p.pid)
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
                sid = int(st[st.rindex(")") + 2:].split()[3])
            except (OSError, ValueError, IndexError):
                continue
            if sid in sids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # ---------------------------------------------------------------- init
    def ensure_init(self):
        """Start init if cold; wait for its end.  Returns None or an
        error dict.  Called with invoke_lock held."""
        if self.status in ("failed", "down"):
            self.teardown("failure")
        with self.cv:
            if self.status == "cold":
                self.start_init()
            end = mono() + self.args.init_timeout
            while self.status == "init" and mono() < end:
                self.check_init_done()
                if self.status == "init":
                    self.cv.wait(0.05)
            if self.status == "init":
                self.init_error = {"errorType": "Sandbox.Timedout",
                                   "errorMessage": "init timed out"}
                self.status = "failed"
            if self.status == "ready":
                return None
            err = self.init_error or {"errorType": "Runtime.Unknown",
                                      "errorMessage": "init failed"}
            self.init["error"] = err
        self.teardown("failure")
        return err

    def start_init(self):
        self.status = "init"
        self.init = {"t0": mono(), "ext_spawn": {}, "ext_register": {},
                     "ext_first_next": {}, "rt_spawn": None,
                     "rt_first_next": None, "error": None}
        self.state["inits"].append(self.init)
        d = os.path.join(self.args.opt, "extensions")
        names = sorted(os.listdir(d)) if os.path.isdir(d) else []
        self.ext_names = [n for n in names
                          if os.access(os.path.join(d, n), os.X_OK)]
        env = self.base_env()
        for n in self.ext_names:
            self.init["ext_spawn"][n] = mono()
            self.spawn(n, os.path.join(d, n), env)
        if self.args.runtime_first or not self.ext_names:
            self.start_runtime()

    def start_runtime(self):
        env = self.base_env()
        env.update({"_HANDLER": self.args.handler,
                    "LAMBDA_TASK_ROOT": self.args.task,
                    "LAMBDA_RUNTIME_DIR": self.args.task})
        self.init["rt_spawn"] = mono()
        self.spawn("runtime", os.path.join(self.args.task, "bootstrap"), env)

    def check_init_done(self):
        i = self.init
        if (i["rt_first_next"] is not None and
                len(i["ext_first_next"]) == len(self.ext_names)):
            self.status = "ready"
            i["done"] = mono()
            self.cv.notify_all()

    # ------------------------------------------------------------ shutdown
    def teardown(self, reason):
        """Shut the environment down (SHUTDOWN to extensions) and make it
        cold.  Returns the shutdown record."""
        with self.cv:
            procs = dict(self.procs)
            exts = list(self.exts.values())
            rec = {"reason": reason, "t0": mono(), "exits": {},
                   "killed": []}
            self.state["shutdowns"].append(rec)
            self.status = "down"
            self.cv.notify_all()
        rt = procs.get("runtime")
        if rt and rt.poll() is None:
            rt.send_signal(signal.SIGTERM)
            try:
                rt.wait(timeout=RUNTIME_TERM_MS / 1000)
                rec["exits"]["runtime"] = rt.returncode
            except subprocess.TimeoutExpired:
                rt.kill()
                rec["killed"].append("runtime")
        deadline = now_ms() + SHUTDOWN_MS
        ev = {"eventType": "SHUTDOWN", "shutdownReason": reason,
              "deadlineMs": deadline}
        for x in exts:
            if "SHUTDOWN" in x["events"]:
                x["q"].put(ev)
        end = mono() + SHUTDOWN_MS / 1000
        for name, p in procs.items():
            if name == "runtime":
                continue
            try:
                p.wait(timeout=max(0, end - mono()))
                rec["exits"][name] = p.returncode
            except subprocess.TimeoutExpired:
                rec["killed"].append(name)
        rec["duration_ms"] = int((mono() - rec["t0"]) * 1000)
        with self.cv:
            self.kill_all()
            inv = self.current
            if inv and not inv.answered:
                inv.answered = True
                inv.out.put(("error", {"errorType": "Sandbox.Shutdown",
                                       "errorMessage": "environment shut "
                                       "down: " + reason}))
            self.reset_vars()
            self.cv.notify_all()
        return rec


ENV = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lambda-emu"

    def log_message(self, fmt, *a):
        if os.environ.get("LAMBDA_EMU_DEBUG"):
            sys.stderr.write("emu: " + fmt % a + "\n")

    # ------------------------------------------------------------ helpers
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            for c in self.chunks():
                data += c
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def chunks(self):
        """Yield the chunks of a chunked body; the trailers end up in
        self.trailers."""
        self.trailers = {}
        while True:
            line = self.rfile.readline()
            if not line:
                raise ConnectionError("body cut short")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = self.rfile.read(size)
            self.rfile.readline()
            yield data
        while True:
            line = self.rfile.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            self.trailers[k.strip()] = v.strip()

    def reply(self, status, obj=None, headers=None, raw=None):
        data = raw if raw is not None else (
            b"" if obj is None else json.dumps(obj).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if obj is not None and raw is None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def err(self, status, etype, msg):
        self.reply(status, {"errorType": etype, "errorMessage": msg})

    # ------------------------------------------------------------- routes
    def do_GET(self):
        p = self.path
        if p == "/2018-06-01/runtime/invocation/next":
            return self.rt_next()
        if p == "/2020-01-01/extension/event/next":
            return self.ext_next()
        if p == "/_emu/state":
            with ENV.lock:
                return self.reply(200, json.loads(json.dumps(
                    ENV.state, default=str)))
        self.err(404, "NotFound", "unknown path " + p)

    def do_PUT(self):
        self.body()
        if self.path.startswith("/2022-07-01/telemetry"):
            return self.reply(202, raw=b"Telemetry API is not supported")
        self.err(404, "NotFound", "unknown path " + self.path)

    def do_POST(self):
        p = self.path
        if p == "/_emu/invoke":
            return self.invoke()
        if p == "/_emu/shutdown":
            self.body()
            rec = ENV.teardown("spindown")
            return self.reply(200, json.loads(json.dumps(rec, default=str)))
        if p == "/2018-06-01/runtime/init/error":
            return self.init_error("runtime")
        if p.startswith("/2018-06-01/runtime/invocation/"):
            rest = p[len("/2018-06-01/runtime/invocation/"):]
            rid, _, what = rest.partition("/")
            return self.rt_result(rid, what)
        if p == "/2020-01-01/extension/register":
            return self.ext_register()
        if p in ("/2020-01-01/extension/init/error",
                 "/2020-01-01/extension/exit/error"):
            return self.ext_error(p.rsplit("/", 2)[-2])
        self.body()
        self.err(404, "NotFound", "unknown path " + p)

    # -------------------------------------------------------- Runtime API
    def rt_next(self):
        env = ENV
        with env.cv:
            gen = env.gen
            if env.init and env.init["rt_first_next"] is None:
                env.init["rt_first_next"] = mono()
            env.rt_waiting = True
            # The previous invocation's phase ends for the runtime here.
            env.current_rt_done = True
            env.check_phase()
            env.cv.notify_all()
        while True:
            try:
                inv = env.rt_q.get(timeout=0.2)
                break
            except queue.Empty:
                if env.gen != gen:
                    return self.err(500, "Runtime.Reset", "environment reset")
        with env.cv:
            env.rt_waiting = False
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", inv.id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:"
                         "omni-test")
        self.send_header("Lambda-Runtime-Trace-Id", inv.trace)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(inv.event)))
        self.end_headers()
        self.wfile.write(inv.event)

    def rt_result(self, rid, what):
        env = ENV
        inv = env.current
        if what not in ("response", "error"):
            self.body()
            return self.err(404, "NotFound", "unknown path " + self.path)
        if inv is None or inv.id != rid:
            self.body()
            return self.err(400, "InvalidRequestID", "unknown request id")
        if inv.answered:
            self.body()
            return self.err(403, "InvalidStateTransition",
                            "response already posted")
        if now_ms() >= inv.deadline_ms:
            # Lambda has timed the invocation out already: a post that
            # starts after the deadline finds it gone, however soon the
            # invoke thread would have noticed.
            self.body()
            return self.err(403, "InvalidStateTransition",
                            "invocation timed out")
        mode = self.headers.get("Lambda-Runtime-Function-Response-Mode")
        if what == "error":
            data = self.body()
            etype = self.headers.get("Lambda-Runtime-Function-Error-Type")
            try:
                obj = json.loads(data)
            except ValueError:
                obj = {"errorMessage": data.decode("utf-8", "replace")}
            if etype:
                obj.setdefault("errorType", etype)
                inv.record["error_type"] = etype
            inv.answered = True
            inv.out.put(("error", obj))
            return self.reply(202, {"status": "OK"})
        if mode is not None and mode != "streaming":
            self.body()
            return self.err(400, "Runtime.InvalidResponseModeHeader",
                            "bad response mode " + mode)
        if mode is None:
            data = self.body()
            if len(data) > 6 * 1024 * 1024 + 100:
                return self.err(413, "RequestEntityTooLarge",
                                "response over 6 MB")
            inv.answered = True
            inv.out.put(("buffered", data,
                         self.headers.get("Content-Type")))
            return self.reply(202, {"status": "OK"})
        # Streaming: pass every chunk on as it comes.
        inv.answered = True
        inv.record["mode"] = "streaming"
        inv.out.put(("start", self.headers.get("Content-Type")))
        try:
            for c in self.chunks():
                inv.out.put(("chunk", c))
        except (ConnectionError, ValueError) as e:
            inv.out.put(("end", {"Lambda-Runtime-Function-Error-Type":
                                 "Runtime.TruncatedResponse",
                                 "X-Emu-Error": str(e)}))
            self.close_connection = True
            return
        inv.out.put(("end", dict(self.trailers)))
        self.reply(202, {"status": "OK"})

    def init_error(self, who):
        data = self.body()
        etype = self.headers.get("Lambda-Runtime-Function-Error-Type") or \
            self.headers.get("Lambda-Extension-Function-Error-Type")
        try:
            obj = json.loads(data)
        except ValueError:
            obj = {"errorMessage": data.decode("utf-8", "replace")}
        obj.setdefault("errorType", etype or "Runtime.Unknown")
        if etype:
            obj["errorType"] = etype
        obj["source"] = who
        with ENV.cv:
            ENV.init_error = obj
            if ENV.status in ("init", "ready"):
                ENV.status = "failed"
            ENV.cv.notify_all()
        self.reply(202, {"status": "OK"})

    # ----------------------------------------------------- Extensions API
    def ext_register(self):
        env = ENV
        name = self.headers.get("Lambda-Extension-Name")
        data = self.body()
        try:
            events = json.loads(data).get("events", [])
        except (ValueError, AttributeError):
            return self.err(400, "InvalidRequest", "bad register body")
        with env.cv:
            taken = [x["name"] for x in env.exts.values()]
            if env.status != "init":
                env.state["register_errors"].append(name)
                return self.err(403, "Extension.RegistrationClosed",
                                "registration is closed")
            if name not in env.ext_names or name in taken:
                env.state["register_errors"].append(name)
                return self.err(403, "Extension.InvalidExtensionName",
                                "no extension file named %r" % name)
            xid = str(uuid.uuid4())
            env.exts[xid] = {"name": name, "events": events,
                             "q": queue.Queue(), "next": False}
            env.init["ext_register"][name] = mono()
            if (len(env.exts) == len(env.ext_names) and
                    env.init["rt_spawn"] is None):
                env.start_runtime()
        self.reply(200, {"functionName": "omni-test",
                         "functionVersion": "$LATEST",
                         "handler": self.server.args.handler},
                   headers={"Lambda-Extension-Identifier": xid})

    def ext_next(self):
        env = ENV
        xid = self.headers.get("Lambda-Extension-Identifier")
        with env.cv:
            x = env.exts.get(xid)
            if x is None:
                return self.err(403, "Extension.InvalidExtensionIdentifier",
                                "unknown extension identifier")
            gen = env.gen
            if env.init and x["name"] not in env.init["ext_first_next"]:
                env.init["ext_first_next"][x["name"]] = mono()
            x["next"] = True
            if env.status == "init":
                env.check_init_done()
            env.check_phase()
            env.cv.notify_all()
        while True:
            try:
                ev = x["q"].get(timeout=0.2)
                break
            except queue.Empty:
                if env.gen != gen and x["q"].empty():
                    return self.err(500, "Extension.Reset",
                                    "environment reset")
        with env.cv:
            x["next"] = False
        self.reply(200, ev, headers={
            "Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    def ext_error(self, kind):
        data = self.body()
        etype = self.headers.get("Lambda-Extension-Function-Error-Type")
        xid = self.headers.get("Lambda-Extension-Identifier")
        with ENV.cv:
            x = ENV.exts.get(xid)
            if x is None:
                return self.err(403, "Extension.InvalidExtensionIdentifier",
                                "unknown extension identifier")
            try:
                obj = json.loads(data)
            except ValueError:
                obj = {}
            obj["errorType"] = etype or "Extension.Unknown"
            obj["source"] = x["name"]
            if kind == "init":
                ENV.init_error = obj
                if ENV.status == "init":
                    ENV.status = "failed"
            else:
                ENV.state.setdefault("exit_errors", []).append(obj)
                ENV.status = "failed"
            ENV.cv.notify_all()
        self.reply(202, {"status": "OK"})

    # ---------------------------------------------------------- test API
    def invoke(self):
        env = ENV
        event = self.body()
        tmo = self.headers.get("X-Emu-Timeout-Ms")
        timeout_ms = int(tmo) if tmo else int(self.server.args.timeout *
                                               1000)
        with env.invoke_lock:
            err = env.ensure_init()
            if err:
                env.state["invocations"].append({"outcome": "init_error",
                                                 "error": err})
                return self.reply(200, err, headers={
                    "X-Amz-Function-Error": "Unhandled"})
            with env.cv:
                # Wait until the previous invoke phase is over.
                end = mono() + 30
                while env.busy and env.status == "ready" and mono() < end:
                    env.cv.wait(0.05)
                inv = Invocation(event, timeout_ms)
                env.state["invocations"].append(inv.record)
                env.current = inv
                env.busy = True
                env.current_rt_done = False
                for x in env.exts.values():
                    if "INVOKE" in x["events"]:
                        x["q"].put({"eventType": "INVOKE",
                                    "deadlineMs": inv.deadline_ms,
                                    "requestId": inv.id,
                                    "invokedFunctionArn":
                                    "arn:aws:lambda:us-east-1:123456789012"
                                    ":function:omni-test",
                                    "tracing": {"type": "X-Amzn-Trace-Id",
                                                "value": inv.trace}})
                env.rt_q.put(inv)
            self.deliver(env, inv)

    def deliver(self, env, inv):
        t0 = mono()
        rec = inv.record
        streaming = False
        while True:
            left = inv.deadline_ms - now_ms()
            try:
                item = inv.out.get(timeout=max(0.001, left / 1000))
            except queue.Empty:
                item = None
            if item is None:
                # Deadline: Sandbox.Timedout, then reset.
                inv.answered = True
                rec["outcome"] = "timeout"
                msg = {"errorType": "Sandbox.Timedout",
                       "errorMessage": "Task timed out after %.2f seconds"
                       % ((mono() - t0))}
                if streaming:
                    self.end_chunked({"Lambda-Runtime-Function-Error-Type":
                                      "Sandbox.Timedout"})
                else:
                    self.reply(200, msg, headers={
                        "X-Amz-Function-Error": "Unhandled"})
                env.teardown("timeout")
                return
            kind = item[0]
            if kind == "buffered":
                rec["outcome"] = "response"
                rec["bytes"] = len(item[1])
                rec["ms"] = int((mono() - t0) * 1000)
                return self.reply(200, raw=item[1], headers={
                    "Content-Type": item[2] or "application/json",
                    "X-Amz-Executed-Version": "$LATEST",
                    "X-Emu-Request-Id": inv.id})
            if kind == "error":
                rec["outcome"] = "error"
                rec["error_type"] = item[1].get("errorType")
                rec["ms"] = int((mono() - t0) * 1000)
                if streaming:
                    return self.end_chunked({
                        "Lambda-Runtime-Function-Error-Type":
                        item[1].get("errorType", "Unknown")})
                self.reply(200, item[1], headers={
                    "X-Amz-Function-Error": "Unhandled",
                    "X-Emu-Request-Id": inv.id})
                if item[1].get("errorType", "").startswith(
                        ("Sandbox.", "Runtime.ExitError", "Extension.")):
                    env.teardown("failure")
                return
            if kind == "start":
                streaming = True
                rec["first_byte_ms"] = None
                self.send_response(200)
                self.send_header("Content-Type",
                                 item[1] or "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Trailer",
                                 "Lambda-Runtime-Function-Error-Type, "
                                 "Lambda-Runtime-Function-Error-Body")
                self.send_header("X-Emu-Response-Mode", "streaming")
                self.send_header("X-Emu-Request-Id", inv.id)
                self.end_headers()
                self.wfile.flush()
            elif kind == "chunk":
                if rec.get("first_byte_ms") is None:
                    rec["first_byte_ms"] = int((mono() - t0) * 1000)
                rec["chunks"] += 1
                rec["bytes"] += len(item[1])
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(item[1]),
                                                        item[1]))
                    self.wfile.flush()
                except OSError:
                    rec["caller_gone"] = True
            elif kind == "end":
                rec["outcome"] = "response"
                rec["trailers"] = item[1]
                rec["error_type"] = item[1].get(
                    "Lambda-Runtime-Function-Error-Type")
                rec["ms"] = int((mono() - t0) * 1000)
                return self.end_chunked(item[1])

    def end_chunked(self, trailers):
        try:
            self.wfile.write(b"0\r\n")
            for k, v in trailers.items():
                self.wfile.write(("%s: %s\r\n" % (k, v)).encode("latin-1"))
            self.wfile.write(b"\r\n")
            self.wfile.flush()
        except OSError:
            pass


def _check_phase(self):
    """The invoke phase ends when the runtime and every extension
    registered for INVOKE have called next again."""
    if not self.busy or not getattr(self, "current_rt_done", False):
        return
    for x in self.exts.values():
        if "INVOKE" in x["events"] and not x["next"]:
            return
    self.busy = False
    self.cv.notify_all()


Env.check_phase = _check_phase


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ------------------------------------------------------------------ client

def invoke(port, event, timeout=60, headers=None, on_chunk=None):
    """POST event to /_emu/invoke; returns {"status", "headers", "body",
    "trailers", "chunks": [(seconds, bytes)], "streaming"}."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    req = ["POST /_emu/invoke HTTP/1.1", "Host: 127.0.0.1",
           "Content-Type: application/json",
           "Content-Length: %d" % len(data), "Connection: close"]
    for k, v in (headers or {}).items():
        req.append("%s: %s" % (k, v))
    s.sendall(("\r\n".join(req) + "\r\n\r\n").encode() + data)
    f = s.makefile("rb")
    t0 = time.monotonic()
    status = int(f.readline().split()[1])
    hdrs = {}
    while True:
        line = f.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    out = {"status": status, "headers": hdrs, "body": b"", "trailers": {},
           "chunks": [], "streaming": False}
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        out["streaming"] = True
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            c = f.read(size)
            f.readline()
            out["chunks"].append((time.monotonic() - t0, c))
            out["body"] += c
            if on_chunk:
                on_chunk(c)
        while True:
            line = f.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            k, _, v = line.partition(":")
            out["trailers"][k.strip()] = v.strip()
    else:
        n = int(hdrs.get("content-length", "0"))
        out["body"] = f.read(n)
    s.close()
    return out


def split_prelude(body):
    """(prelude dict, rest) of an HTTP-integration streamed body."""
    i = body.index(b"\0" * 8)
    return json.loads(body[:i]), body[i + 8:]


def error_body(trailers):
    v = trailers.get("Lambda-Runtime-Function-Error-Body")
    return json.loads(base64.b64decode(v)) if v else None


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--opt", required=True, help="layer root (/opt)")
    ap.add_argument("--task", required=True, help="function root (/var/task)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="function timeout, seconds")
    ap.add_argument("--init-timeout", type=float, default=10.0)
    ap.add_argument("--runtime-first", action="store_true")
    ap.add_argument("--handler", default="bootstrap")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.args = args
    ENV = Env(args)
    ENV.port = srv.server_address[1]

    def stop(sig, frame):
        threading.Thread(target=lambda: (ENV.teardown("spindown"),
                                         srv.shutdown()), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening %d" % ENV.port, flush=True)
    srv.serve_forever(poll_interval=0.1)
    sys.exit(0)


if __name__ == "__main__":
    main()
