"""The quote service: a small price-quote HTTP API (python3 stdlib only).

    python3 app.py --port 18101 [--host 127.0.0.1]

Endpoints:

- ``GET /``                         service name, version and a featured quote
- ``GET /products``                 the catalog
- ``GET /quote?sku=S&qty=N``        a price quote (volume discounts, rounded to cents)
- ``GET /health``                   ``{"status": "ok"}``
- ``GET /version``                  ``{"version": "..."}``
- ``GET /metrics``                  Prometheus text format (see metrics.py)

A release may carry ``faults.json`` next to ``VERSION``: injected faults on
``/quote`` that make a release *just* over or under an analysis threshold
(the deployment guide's releases 3.x, ``examples/delivery/guides``)::

    {"error-rate": 0.008, "delay-ms": 30, "unhealthy": false}

``error-rate`` (0-1) answers that share of the quote requests with 500,
spread evenly (request n fails when floor(n * rate) grows), so 1000
requests at 0.8% fail exactly 8 times; ``delay-ms`` adds that much latency
to every quote; ``unhealthy`` makes ``/health`` answer 503 (a release that
never becomes ready). A bad file stops the service at start with the
reason.

The pricing logic lives in ``quotes.py``, which is what changes between
releases (``releases/<version>/quotes.py``); this file, ``metrics.py`` and the
release's ``VERSION`` file are packaged together by the pipeline's build
stage. From the source tree, ``SERVICE_VERSION=2.0.0 python3 app.py`` runs
that release.
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
# A packaged release has quotes.py and VERSION next to this file; in the
# source tree they are in releases/<SERVICE_VERSION> (default 1.0.0).
RELEASE_DIR = HERE
if not os.path.exists(os.path.join(HERE, "quotes.py")):
    RELEASE_DIR = os.path.join(HERE, "releases", os.environ.get("SERVICE_VERSION", "1.0.0"))
sys.path.insert(0, HERE)
sys.path.insert(0, RELEASE_DIR)

import metrics  # noqa: E402
import quotes  # noqa: E402

ROUTES = ("/", "/products", "/quote", "/health", "/version", "/metrics")


def read_version():
    try:
        with open(os.path.join(RELEASE_DIR, "VERSION"), encoding="utf-8") as f:
            return f.read().strip() or "0.0.0"
    except OSError:
        return "0.0.0"


class Faults:
    """The release's injected faults (``faults.json``; none without it)."""

    KEYS = ("error-rate", "delay-ms", "unhealthy")

    def __init__(self, error_rate=0.0, delay_ms=0.0, unhealthy=False):
        self.error_rate = error_rate
        self.delay_ms = delay_ms
        self.unhealthy = unhealthy
        self._served = 0
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path):
        """Faults from ``path``; ``ValueError`` naming the file and key when bad."""
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
        except FileNotFoundError:
            return cls()
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError("{}: not readable JSON: {}".format(path, e)) from None
        if not isinstance(spec, dict):
            raise ValueError("{}: must be an object like {{\"error-rate\": 0.008}}".format(path))
        unknown = sorted(set(spec) - set(cls.KEYS))
        if unknown:
            raise ValueError("{}: unknown key {!r}; known: {}".format(path, unknown[0], ", ".join(cls.KEYS)))
        rate, delay = spec.get("error-rate", 0), spec.get("delay-ms", 0)
        for key, value, high in (("error-rate", rate, 1), ("delay-ms", delay, 60000)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
                raise ValueError("{}: {} must be a number from 0 to {}, not {!r}".format(path, key, high, value))
        unhealthy = spec.get("unhealthy", False)
        if not isinstance(unhealthy, bool):
            raise ValueError("{}: unhealthy must be true or false, not {!r}".format(path, unhealthy))
        return cls(float(rate), float(delay), unhealthy)

    def fails_next(self):
        """Counts a quote request; True when it is one of the injected errors."""
        with self._lock:
            n = self._served
            self._served += 1
        return int((n + 1) * self.error_rate) > int(n * self.error_rate)

    def delay(self):
        if self.delay_ms > 0:
            time.sleep(self.delay_ms / 1000.0)


class InjectedFault(Exception):
    """A request that ``faults.json`` makes fail (answered 500)."""


VERSION = read_version()
# The series a dashboard or an error budget looks at exist (at 0) before
# the first request: the routes' successes and server errors.
REGISTRY = metrics.Registry(
    VERSION, zero=[("GET", r, s) for r in ROUTES if r != "/metrics" for s in (200, 500)]
)
FAULTS = Faults()


class BadRequest(Exception):
    """A client error: answered with 400 and the message."""


def query_params(query):
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def handle(path, params):
    """Return (status, content_type, body) for a GET request."""
    if path == "/health":
        if FAULTS.unhealthy:
            return 503, "application/json", {"status": "unhealthy", "reason": "faults.json"}
        return 200, "application/json", {"status": "ok"}
    if path == "/version":
        return 200, "application/json", {"version": VERSION}
    if path == "/metrics":
        return 200, "text/plain; version=0.0.4; charset=utf-8", REGISTRY.render()
    if path == "/products":
        return 200, "application/json", {"products": quotes.catalog()}
    if path == "/quote":
        FAULTS.delay()
        if FAULTS.fails_next():
            raise InjectedFault("injected fault (faults.json error-rate {})".format(FAULTS.error_rate))
        sku = params.get("sku", "")
        try:
            qty = int(params.get("qty", "1"))
        except ValueError:
            raise BadRequest("qty must be a whole number") from None
        try:
            q = quotes.quote(sku, qty)
        except quotes.QuoteError as e:
            raise BadRequest(str(e)) from None
        q["version"] = VERSION
        return 200, "application/json", q
    if path == "/":
        featured = quotes.quote(quotes.FEATURED_SKU, 1)
        return 200, "application/json", {
            "service": "quote",
            "version": VERSION,
            "featured": featured,
        }
    return 404, "application/json", {"error": "not found", "path": path}


class Handler(BaseHTTPRequestHandler):
    server_version = "quote-service"
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        started = time.perf_counter()
        url = urlsplit(self.path)
        try:
            status, ctype, body = handle(url.path, query_params(url.query))
        except BadRequest as e:
            status, ctype, body = 400, "application/json", {"error": str(e)}
        except InjectedFault as e:
            status, ctype, body = 500, "application/json", {"error": str(e)}
        except Exception as e:  # a bug: answer 500 and log the traceback
            traceback.print_exc()
            status, ctype, body = 500, "application/json", {"error": "internal error: {}".format(e)}
        data = body.encode() if isinstance(body, str) else (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Version", VERSION)
        self.end_headers()
        self.wfile.write(data)
        route = url.path if url.path in ROUTES else "other"
        REGISTRY.observe("GET", route, status, time.perf_counter() - started)

    def log_message(self, fmt, *args):
        if os.environ.get("QUOTE_ACCESS_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main(argv=None):
    parser = argparse.ArgumentParser(description="The quote service")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    global FAULTS
    try:
        FAULTS = Faults.load(os.path.join(RELEASE_DIR, "faults.json"))
    except ValueError as e:
        sys.exit("quote service: {}".format(e))
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("quote service {} listening on http://{}:{}".format(VERSION, args.host, args.port), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
