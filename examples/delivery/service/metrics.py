"""Prometheus text-format metrics for the quote service (stdlib only).

Exposes, in the text exposition format 0.0.4:

- ``http_requests_total{method,path,status}``  counter
- ``http_request_duration_seconds{path}``      histogram (le buckets, _sum, _count)
- ``build_info{version}``                      gauge, always 1
"""

import threading

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(pairs):
    inner = ",".join(
        '{}="{}"'.format(k, str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in pairs
    )
    return "{" + inner + "}" if inner else ""


def _num(value):
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Registry:
    """Thread-safe request counters and latency histograms."""

    def __init__(self, version, zero=()):
        """``zero``: (method, path, status) series exported as 0 from the
        start. Prometheus' ``increase()`` cannot count the first value of a
        series it has never seen, so errors that all happen between two
        scrapes would be invisible without a 0 sample before them (the
        Prometheus docs' advice: initialise the series you know of)."""
        self.version = version
        self._lock = threading.Lock()
        self._requests = {(m, p, str(s)): 0 for m, p, s in zero}  # (method, path, status) -> count
        self._hist = {}  # path -> [bucket counts..., sum, count]

    def observe(self, method, path, status, seconds):
        with self._lock:
            key = (method, path, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._hist.setdefault(path, [0] * len(BUCKETS) + [0.0, 0])
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self):
        with self._lock:
            requests = sorted(self._requests.items())
            hist = sorted((p, list(h)) for p, h in self._hist.items())
        out = [
            "# HELP http_requests_total Requests handled, by method, path and status.",
            "# TYPE http_requests_total counter",
        ]
        for (method, path, status), n in requests:
            labels = _labels([("method", method), ("path", path), ("status", status)])
            out.append("http_requests_total{} {}".format(labels, n))
        out += [
            "# HELP http_request_duration_seconds Time to handle a request.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for path, h in hist:
            for i, le in enumerate(BUCKETS):
                labels = _labels([("path", path), ("le", _num(le))])
                out.append("http_request_duration_seconds_bucket{} {}".format(labels, h[i]))
            labels = _labels([("path", path), ("le", "+Inf")])
            out.append("http_request_duration_seconds_bucket{} {}".format(labels, h[-1]))
            out.append("http_request_duration_seconds_sum{} {}".format(_labels([("path", path)]), repr(h[-2])))
            out.append("http_request_duration_seconds_count{} {}".format(_labels([("path", path)]), h[-1]))
        out += [
            "# HELP build_info The running build.",
            "# TYPE build_info gauge",
            "build_info{} 1".format(_labels([("version", self.version)])),
        ]
        return "\n".join(out) + "\n"
