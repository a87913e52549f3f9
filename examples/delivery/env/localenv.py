#!/usr/bin/env python3
"""The example environment of the `local` delivery target, on loopback.

    python3 env/localenv.py [--config env/env.json] up [--detach]
    python3 env/localenv.py [--config env/env.json] down
    python3 env/localenv.py [--config env/env.json] status

What it runs (see docs/delivery.md, "The example environment"):

- a **supervisor** that starts the application of every slot under
  ``<root>/slots/`` on the port ``env.json`` gives the slot, and restarts a
  slot's process when its link points at another release (polled every
  200 ms) or when the process died;
- a **router** on ``router`` port that sends each request to a slot: by
  ``flags.json`` when the request has an ``X-User`` header (consistent
  bucketing, :func:`in_rollout`), else by the weights of ``weights.json``,
  else to the stable slot of ``state.json``, else to the only running
  slot. ``routing.json`` (sluice writes it for ``target.affinity`` and
  ``target.canary-header``) adds header routing (``X-Canary: always`` /
  ``never``, checked first) and session affinity (a user key placed
  consistently on the weights, see :func:`choose_slot`). Every request is written as one
  JSON line to the access log. ``/_router/metrics`` gives Prometheus text
  (requests by slot, version and status, and a latency histogram) and
  ``/_router/health`` the router's own health; everything else is proxied.

``env.json`` (paths relative to the file)::

    {
      "root": "../deploy/production",
      "slots": {"blue": 18101, "green": 18102},
      "router": 18100,
      "command": ["python3", "{release}/app.py", "--port", "{port}"],
      "access_log": "../deploy/production/access.log",
      "pid_file": "../deploy/production/localenv.pid",
      "load": {"rps": 10, "paths": ["/quote?sku=widget&qty=3"], "users": 200}
    }

In ``command``, ``{release}`` is the absolute path of the release a slot's
link points at, ``{port}`` the slot's port, ``{slot}`` its name. The process
runs in the release directory; its output goes to ``<root>/logs/<slot>.log``.

``load`` (optional) starts a **load generator**: ``rps`` requests a second
through the router (or ``target``, e.g. ``127.0.0.1:18180`` for nginx), cycling over ``paths``, each with ``X-User: user-<n>``
for a random n below ``users`` (so flags apply), the way real users would
keep a service busy while the delivery stages watch it.

``up`` runs in the foreground until Ctrl-C or SIGTERM, then stops every
process it started; ``up --detach`` starts the same in the background, waits
until the router answers, and writes the pid file that ``down`` uses.

Python 3 standard library only.
"""

import argparse
import hashlib
import http.client
import http.cookies
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLL_SECONDS = 0.2
RESTART_BACKOFF_SECONDS = 1.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


# --------------------------------------------------------------------------
# Consistent bucketing (the same function as sluice_delivery::flags::in_rollout)


def bucket(flag, key):
    """The user's bucket in 0..9999 for ``flag``: the first four bytes of
    sha256("<flag>:<key>") as a big-endian u32, modulo 10000."""
    digest = hashlib.sha256("{}:{}".format(flag, key).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 10000


def in_rollout(flag, key, percent):
    """Whether user ``key`` is in ``flag`` rolled out to ``percent`` (0-100)."""
    return bucket(flag, key) < percent * 100


# --------------------------------------------------------------------------
# Configuration and environment files


class ConfigError(Exception):
    """env.json is missing or wrong."""


def load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError("cannot read {}: {}".format(path, e)) from None
    except ValueError as e:
        raise ConfigError("{} is not JSON: {}".format(path, e)) from None
    base = os.path.dirname(os.path.abspath(path))
    known = {"root", "slots", "router", "command", "access_log", "pid_file", "host", "load"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError("{}: unknown keys {} (known: {})".format(path, unknown, sorted(known)))
    for key in ("root", "slots", "router", "command"):
        if key not in raw:
            raise ConfigError("{}: missing key {!r}".format(path, key))
    if not isinstance(raw["slots"], dict) or not all(isinstance(p, int) for p in raw["slots"].values()):
        raise ConfigError('{}: "slots" must map slot names to ports, e.g. {{"blue": 18101}}'.format(path))
    if not isinstance(raw["command"], list) or not raw["command"]:
        raise ConfigError('{}: "command" must be a non-empty list of strings'.format(path))
    root = os.path.normpath(os.path.join(base, raw["root"]))
    load = raw.get("load")
    if load is not None:
        if not isinstance(load, dict) or set(load) - {"rps", "paths", "users", "target"}:
            raise ConfigError('{}: "load" must be {{"rps": N, "paths": [...], "users": N, "target": "host:port"}}'.format(path))
        target = str(load.get("target", "{}:{}".format(raw.get("host", "127.0.0.1"), raw["router"])))
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError('{}: "load.target" must be host:port, e.g. "127.0.0.1:18180"'.format(path))
        load = {
            "host": host,
            "port": int(port),
            "rps": float(load.get("rps", 5)),
            "paths": [str(x) for x in load.get("paths", ["/"])] or ["/"],
            "users": max(1, int(load.get("users", 100))),
        }
    return {
        "load": load,
        "root": root,
        "slots": dict(raw["slots"]),
        "router": int(raw["router"]),
        "host": raw.get("host", "127.0.0.1"),
        "command": [str(a) for a in raw["command"]],
        "access_log": os.path.normpath(os.path.join(base, raw.get("access_log", os.path.join(root, "access.log")))),
        "pid_file": os.path.normpath(os.path.join(base, raw.get("pid_file", os.path.join(root, "localenv.pid")))),
    }


def read_json(path):
    """The JSON in ``path``, or None when it does not exist or is not JSON
    (writers rename complete files into place, so a bad file is a real error
    that routing survives)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def log(msg):
    sys.stderr.write("{} localenv: {}\n".format(time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Supervisor: one process per slot, following the slot's link


class Slot:
    def __init__(self, name):
        self.name = name
        self.release = None
        self.proc = None
        self.log_file = None
        self.next_start = 0.0


class Supervisor:
    def __init__(self, cfg):
        self.cfg = cfg
        self.slots = {}
        self.warned = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def slots_dir(self):
        return os.path.join(self.cfg["root"], "slots")

    def linked_releases(self):
        """slot name -> absolute release directory, for every slot link."""
        out = {}
        try:
            names = os.listdir(self.slots_dir())
        except OSError:
            return out
        for name in names:
            if name.startswith("."):
                continue  # temporary links of an atomic switch
            path = os.path.join(self.slots_dir(), name)
            target = os.path.realpath(path)
            if os.path.isdir(target):
                out[name] = target
        return out

    def command_for(self, slot, release):
        port = self.cfg["slots"][slot]
        return [
            a.replace("{release}", release).replace("{port}", str(port)).replace("{slot}", slot)
            for a in self.cfg["command"]
        ]

    def start(self, slot, release):
        cmd = self.command_for(slot.name, release)
        logs = os.path.join(self.cfg["root"], "logs")
        os.makedirs(logs, exist_ok=True)
        slot.log_file = open(os.path.join(logs, slot.name + ".log"), "ab")
        env = dict(os.environ, SLOT=slot.name, PORT=str(self.cfg["slots"][slot.name]))
        try:
            slot.proc = subprocess.Popen(
                cmd, cwd=release, stdout=slot.log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except OSError as e:
            log("slot {}: cannot start {}: {}".format(slot.name, cmd, e))
            slot.proc = None
            slot.next_start = time.monotonic() + RESTART_BACKOFF_SECONDS
            return
        slot.release = release
        log("slot {}: started {} (pid {}) on port {}".format(
            slot.name, os.path.basename(release), slot.proc.pid, self.cfg["slots"][slot.name]))

    @staticmethod
    def stop(slot):
        proc = slot.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
                proc.wait()
        slot.proc = None
        slot.release = None
        if slot.log_file is not None:
            slot.log_file.close()
            slot.log_file = None

    def reconcile(self):
        linked = self.linked_releases()
        with self.lock:
            for name in list(self.slots):
                if name not in linked:
                    log("slot {}: link removed, stopping".format(name))
                    self.stop(self.slots.pop(name))
            for name, release in sorted(linked.items()):
                if name not in self.cfg["slots"]:
                    if name not in self.warned:
                        log("slot {}: no port in env.json, not started".format(name))
                        self.warned.add(name)
                    continue
                slot = self.slots.setdefault(name, Slot(name))
                if slot.proc is not None and slot.release != release:
                    log("slot {}: link changed to {}, restarting".format(name, os.path.basename(release)))
                    self.stop(slot)
                elif slot.proc is not None and slot.proc.poll() is not None:
                    log("slot {}: process exited with {}, restarting".format(name, slot.proc.returncode))
                    self.stop(slot)
                    slot.next_start = time.monotonic() + RESTART_BACKOFF_SECONDS
                if slot.proc is None and time.monotonic() >= slot.next_start:
                    self.start(slot, release)

    def run(self):
        while not self.stopping.is_set():
            try:
                self.reconcile()
            except Exception as e:  # keep supervising whatever one pass hit
                log("supervisor: {}".format(e))
            self.stopping.wait(POLL_SECONDS)

    def running(self):
        """Names of the slots whose process runs."""
        with self.lock:
            return sorted(n for n, s in self.slots.items() if s.proc is not None and s.proc.poll() is None)

    def version_of(self, slot):
        with self.lock:
            s = self.slots.get(slot)
            release = s.release if s else None
        if release is None:
            return ""
        meta = read_json(os.path.join(release, ".release.json")) or {}
        return str(meta.get("version") or os.path.basename(release))

    def shutdown(self):
        self.stopping.set()
        with self.lock:
            for slot in self.slots.values():
                self.stop(slot)
            self.slots.clear()


# --------------------------------------------------------------------------
# Router


def affinity_point(key):
    """Where user ``key`` falls in [0, 1) for session affinity: the first
    eight bytes of sha256("affinity:<key>") over 2**64. Fixed per key, so
    the user keeps a route while the weights hold, and with the candidate
    last (as sluice writes a canary split) a growing candidate weight only
    moves users from stable to the candidate."""
    digest = hashlib.sha256("affinity:{}".format(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def header(headers, name):
    """Header ``name`` of ``headers`` (case-insensitive), or None."""
    if not headers or not name:
        return None
    lower = name.lower()
    for k, v in headers.items():
        if k.lower() == lower:
            return v
    return None


def affinity_key(routing, headers):
    """The user key of ``routing.json``'s ``affinity`` (a header or a cookie)."""
    affinity = routing.get("affinity") or {}
    if affinity.get("header"):
        return header(headers, affinity["header"]) or None
    if affinity.get("cookie"):
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(header(headers, "Cookie") or "")
        except http.cookies.CookieError:
            return None
        morsel = jar.get(affinity["cookie"])
        return morsel.value if morsel is not None and morsel.value else None
    return None


def choose_slot(root, user, rng=random, running=(), headers=None):
    """(slot, reason) for one request, from the environment's files; with
    none of them, the only running slot (``running``).

    ``routing.json`` (written by sluice with ``target.affinity`` or
    ``target.canary-header``): a canary header of ``always`` / ``never``
    sends the request to the candidate / stable slot before anything
    else; with ``affinity``, requests with the user key are placed on the
    weights by :func:`affinity_point` instead of at random."""
    routing = read_json(os.path.join(root, "routing.json")) or {}
    canary = routing.get("canary_header") or {}
    if canary.get("candidate") and canary.get("stable"):
        value = header(headers, canary.get("name"))
        if value == "always":
            return canary["candidate"], "header always"
        if value == "never":
            return canary["stable"], "header never"
    if user:
        flags = (read_json(os.path.join(root, "flags.json")) or {}).get("flags") or {}
        for name in sorted(flags):
            f = flags[name]
            try:
                on = in_rollout(name, user, float(f.get("percent", 0)))
            except (TypeError, ValueError):
                continue
            slot = f.get("on") if on else f.get("off")
            if slot:
                return slot, "flag {} {}".format(name, "on" if on else "off")
    routes = (read_json(os.path.join(root, "weights.json")) or {}).get("routes") or []
    weighted = []
    for r in routes:
        try:
            w = float(r.get("weight", 0))
        except (TypeError, ValueError):
            continue
        if w > 0 and r.get("slot"):
            weighted.append((r["slot"], w))
    if weighted:
        key = affinity_key(routing, headers)
        total = sum(w for _, w in weighted)
        if key is not None:
            pick, reason = affinity_point(key) * total, "affinity"
        else:
            pick, reason = rng.uniform(0, total), "weights"
        for slot, w in weighted:
            pick -= w
            if pick < 0 or (pick <= 0 and reason == "weights"):
                return slot, reason
        return weighted[-1][0], reason
    stable = ((read_json(os.path.join(root, "state.json")) or {}).get("stable") or {}).get("slot")
    if stable:
        return stable, "stable"
    if len(running) == 1:
        return running[0], "only slot"
    return None, "no route"


class RouterMetrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}
        self.hist = {}

    def observe(self, slot, version, status, seconds):
        with self.lock:
            key = (slot or "", version or "", str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.hist.setdefault((slot or "", version or ""), [0] * len(LATENCY_BUCKETS) + [0.0, 0])
            for i, le in enumerate(LATENCY_BUCKETS):
                if seconds <= le:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self):
        with self.lock:
            requests = sorted(self.requests.items())
            hist = sorted((k, list(v)) for k, v in self.hist.items())
        out = ["# TYPE router_requests_total counter"]
        for (slot, version, status), n in requests:
            out.append('router_requests_total{{slot="{}",version="{}",status="{}"}} {}'.format(slot, version, status, n))
        out.append("# TYPE router_request_duration_seconds histogram")
        for (slot, version), h in hist:
            labels = 'slot="{}",version="{}"'.format(slot, version)
            for i, le in enumerate(LATENCY_BUCKETS):
                out.append('router_request_duration_seconds_bucket{{{},le="{}"}} {}'.format(labels, le, h[i]))
            out.append('router_request_duration_seconds_bucket{{{},le="+Inf"}} {}'.format(labels, h[-1]))
            out.append("router_request_duration_seconds_sum{{{}}} {}".format(labels, h[-2]))
            out.append("router_request_duration_seconds_count{{{}}} {}".format(labels, h[-1]))
        return "\n".join(out) + "\n"


def make_router(cfg, supervisor):
    metrics = RouterMetrics()
    log_lock = threading.Lock()
    os.makedirs(os.path.dirname(cfg["access_log"]), exist_ok=True)
    access = open(cfg["access_log"], "a", encoding="utf-8")

    def write_access(entry):
        with log_lock:
            access.write(json.dumps(entry, separators=(",", ":")) + "\n")
            access.flush()

    class Router(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "localenv-router"

        def log_message(self, fmt, *args):
            pass

        def reply(self, status, body, ctype="application/json"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def proxy(self):
            started = time.perf_counter()
            if self.path == "/_router/health":
                return self.reply(200, '{"status": "ok"}\n')
            if self.path == "/_router/metrics":
                return self.reply(200, metrics.render(), "text/plain; version=0.0.4")
            user = self.headers.get("X-User")
            slot, reason = choose_slot(cfg["root"], user, running=supervisor.running(), headers=self.headers)
            version = supervisor.version_of(slot) if slot else ""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            status, error = 502, None
            port = cfg["slots"].get(slot) if slot else None
            if port is None:
                error = "no slot to route to ({})".format(reason)
                self.reply(502, json.dumps({"error": error}) + "\n")
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                conn = http.client.HTTPConnection(cfg["host"], port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                    self.send_response(status)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "server", "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("X-Slot", slot)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError as e:
                    error = "slot {} on port {}: {}".format(slot, port, e)
                    self.reply(502, json.dumps({"error": error}) + "\n")
                finally:
                    conn.close()
            seconds = time.perf_counter() - started
            metrics.observe(slot, version, status, seconds)
            entry = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                "method": self.command,
                "path": self.path,
                "user": user,
                "slot": slot,
                "version": version,
                "route": reason,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            }
            if error:
                entry["error"] = error
            write_access(entry)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = proxy

    server = ThreadingHTTPServer((cfg["host"], cfg["router"]), Router)
    server.daemon_threads = True
    return server


# --------------------------------------------------------------------------
# Load generator


def generate_load(cfg, stopping):
    """Sends ``rps`` requests a second through the router until stopped."""
    load = cfg["load"]
    if not load or load["rps"] <= 0:
        return
    period = 1.0 / load["rps"]
    rng = random.Random()
    i = 0
    next_at = time.monotonic()
    while not stopping.is_set():
        path = load["paths"][i % len(load["paths"])]
        i += 1
        conn = http.client.HTTPConnection(load["host"], load["port"], timeout=5)
        try:
            conn.request("GET", path, headers={"X-User": "user-{}".format(rng.randrange(load["users"]))})
            conn.getresponse().read()
        except OSError:
            pass
        finally:
            conn.close()
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stopping.wait(delay)
        else:
            next_at = time.monotonic()


# --------------------------------------------------------------------------
# Commands


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(path):
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def cmd_up(cfg, config_path):
    os.makedirs(os.path.join(cfg["root"], "slots"), exist_ok=True)
    supervisor = Supervisor(cfg)
    try:
        router = make_router(cfg, supervisor)
    except OSError as e:
        log("router port {}: {}".format(cfg["router"], e))
        return 1
    with open(cfg["pid_file"], "w", encoding="utf-8") as f:
        f.write("{}\n".format(os.getpid()))

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (`&` in a script)
    sup_thread = threading.Thread(target=supervisor.run, daemon=True)
    sup_thread.start()
    router_thread = threading.Thread(target=router.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    router_thread.start()
    threading.Thread(target=generate_load, args=(cfg, supervisor.stopping), daemon=True).start()
    log("router on http://{}:{} for {} (config {})".format(cfg["host"], cfg["router"], cfg["root"], config_path))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        log("stopping")
    finally:
        router.shutdown()
        router.server_close()
        supervisor.shutdown()
        if read_pid(cfg["pid_file"]) == os.getpid():
            os.remove(cfg["pid_file"])
    return 0


def cmd_detach(cfg, config_path):
    pid = read_pid(cfg["pid_file"])
    if pid and alive(pid):
        log("already running (pid {}); run `down` first".format(pid))
        return 1
    os.makedirs(cfg["root"], exist_ok=True)
    out = open(os.path.join(cfg["root"], "localenv.log"), "ab")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--config", config_path, "up"],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log("exited with {}; see {}".format(proc.returncode, out.name))
            return 1
        if read_pid(cfg["pid_file"]) == proc.pid and port_open(cfg["host"], cfg["router"]):
            print("localenv up (pid {}), router http://{}:{}, log {}".format(proc.pid, cfg["host"], cfg["router"], out.name))
            return 0
        time.sleep(0.1)
    log("router did not answer within 15 s; see {}".format(out.name))
    proc.terminate()
    return 1


def cmd_down(cfg):
    pid = read_pid(cfg["pid_file"])
    if not pid or not alive(pid):
        print("localenv is not running")
        if pid:
            os.remove(cfg["pid_file"])
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        log("pid {} did not stop; killing it".format(pid))
        os.kill(pid, signal.SIGKILL)
    if os.path.exists(cfg["pid_file"]):
        os.remove(cfg["pid_file"])
    print("localenv down (pid {})".format(pid))
    return 0


def cmd_status(cfg):
    pid = read_pid(cfg["pid_file"])
    print("localenv: {}".format("running (pid {})".format(pid) if pid and alive(pid) else "not running"))
    sup = Supervisor(cfg)
    for slot, release in sorted(sup.linked_releases().items()):
        port = cfg["slots"].get(slot)
        up = port is not None and port_open(cfg["host"], port)
        print("  slot {:<12} {:<30} port {} {}".format(slot, os.path.basename(release), port, "up" if up else "down"))
    routes = (read_json(os.path.join(cfg["root"], "weights.json")) or {}).get("routes") or []
    for r in routes:
        print("  route {} {} weight {}".format(r.get("slot"), r.get("version"), r.get("weight")))
    return 0


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="The example environment of the local delivery target")
    parser.add_argument("--config", default=os.path.join(here, "env.json"), help="env.json (default: next to this script)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the slots' processes and the router")
    up.add_argument("--detach", action="store_true", help="run in the background and write the pid file")
    sub.add_parser("down", help="stop a detached environment")
    sub.add_parser("status", help="slots, their releases and the routes")
    args = parser.parse_args(argv)
    config_path = os.path.abspath(args.config)
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        log(str(e))
        return 2
    if args.command == "up":
        return cmd_detach(cfg, config_path) if args.detach else cmd_up(cfg, config_path)
    if args.command == "down":
        return cmd_down(cfg)
    return cmd_status(cfg)


if __name__ == "__main__":
    sys.exit(main())
