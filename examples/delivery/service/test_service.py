"""Unit tests of the quote service: python3 -m unittest -v (from this directory).

Release 1.0.0 is tested as it should behave; for release 2.0.0 the tests pin
down the bug it ships (a 16-bit nonce field given five-digit nonces), which is
what the delivery pipeline's canary analysis catches in production.
"""

import importlib.util
import json
import os
import struct
import sys
import threading
import unittest
import urllib.error
import urllib.request
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import metrics  # noqa: E402


def load_quotes(version):
    path = os.path.join(HERE, "releases", version, "quotes.py")
    spec = importlib.util.spec_from_file_location("quotes_" + version.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class QuotesV1(unittest.TestCase):
    def setUp(self):
        self.q = load_quotes("1.0.0")

    def test_volume_discount_and_rounding(self):
        self.assertEqual(self.q.quote("widget", 1)["total"], "4.99")
        self.assertEqual(self.q.quote("widget", 10)["total"], "47.41")  # 49.90 * 0.95 = 47.405
        self.assertEqual(self.q.quote("gizmo", 100)["total"], "30.80")

    def test_rejects_unknown_sku_and_bad_qty(self):
        with self.assertRaises(self.q.QuoteError):
            self.q.quote("nope", 1)
        with self.assertRaises(self.q.QuoteError):
            self.q.quote("widget", 0)


class QuotesV2(unittest.TestCase):
    def setUp(self):
        self.q = load_quotes("2.0.0")

    def test_token_for_small_nonce(self):
        with mock.patch.object(self.q.secrets, "randbelow", return_value=4242):
            q = self.q.quote("widget", 3)
        self.assertEqual(q["total"], "14.97")
        self.assertEqual(len(q["quote_id"]), 20)

    def test_the_shipped_bug_nonces_above_65535_do_not_fit(self):
        with mock.patch.object(self.q.secrets, "randbelow", return_value=70000):
            with self.assertRaises(struct.error):
                self.q.quote("widget", 3)
        # 34.5% of the five-digit nonces overflow the u16 field.
        share = (10**self.q.NONCE_DIGITS - 65536) / 10**self.q.NONCE_DIGITS
        self.assertAlmostEqual(share, 0.34464)


class Metrics(unittest.TestCase):
    def test_known_series_start_at_zero(self):
        # A series Prometheus first sees at 5 has an increase() of 0: the
        # errors of a release that failed between two scrapes would be lost.
        r = metrics.Registry("9.9.9", zero=[("GET", "/quote", 500)])
        self.assertIn('http_requests_total{method="GET",path="/quote",status="500"} 0', r.render())
        r.observe("GET", "/quote", 500, 0.01)
        self.assertIn('http_requests_total{method="GET",path="/quote",status="500"} 1', r.render())

    def test_text_format(self):
        r = metrics.Registry("1.0.0")
        r.observe("GET", "/quote", 200, 0.003)
        r.observe("GET", "/quote", 500, 0.2)
        text = r.render()
        self.assertIn('http_requests_total{method="GET",path="/quote",status="500"} 1', text)
        self.assertIn('http_request_duration_seconds_bucket{path="/quote",le="0.005"} 1', text)
        self.assertIn('http_request_duration_seconds_bucket{path="/quote",le="+Inf"} 2', text)
        self.assertIn('http_request_duration_seconds_count{path="/quote"} 2', text)
        self.assertIn('build_info{version="1.0.0"} 1', text)


class Server(unittest.TestCase):
    """The HTTP layer, serving release 1.0.0's pricing."""

    @classmethod
    def setUpClass(cls):
        sys.modules["quotes"] = load_quotes("1.0.0")
        spec = importlib.util.spec_from_file_location("quote_app", os.path.join(HERE, "app.py"))
        cls.app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.app)
        cls.server = cls.app.ThreadingHTTPServer(("127.0.0.1", 0), cls.app.Handler)
        cls.base = "http://127.0.0.1:{}".format(cls.server.server_address[1])
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_endpoints(self):
        self.assertEqual(self.get("/health"), (200, '{"status": "ok"}\n'))
        status, body = self.get("/quote?sku=gadget&qty=2")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["total"], "25.00")
        self.assertEqual(self.get("/quote?sku=gadget&qty=x")[0], 400)
        self.assertEqual(self.get("/nope")[0], 404)
        status, text = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('path="/quote",status="400"', text)

    def test_injected_faults_fail_the_configured_share_of_quotes(self):
        # 0.8% of 1000 quotes fail: exactly 8, evenly spread (the 125th,
        # 250th, ...), answered 500; other paths are never touched.
        self.app.FAULTS = self.app.Faults(error_rate=0.008)
        try:
            statuses = [self.get("/quote?sku=widget&qty=1")[0] for _ in range(1000)]
            self.assertEqual(statuses.count(500), 8)
            self.assertEqual([i for i, s in enumerate(statuses) if s == 500][:2], [124, 249])
            self.assertEqual(self.get("/health")[0], 200)
        finally:
            self.app.FAULTS = self.app.Faults()


class FaultsFile(unittest.TestCase):
    """``faults.json`` of the guide's releases."""

    def setUp(self):
        sys.modules["quotes"] = load_quotes("1.0.0")
        spec = importlib.util.spec_from_file_location("quote_app_faults", os.path.join(HERE, "app.py"))
        self.app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.app)

    def load(self, text):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "faults.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            return self.app.Faults.load(path)

    def test_the_guide_releases_parse(self):
        faults = self.app.Faults.load(os.path.join(HERE, "releases", "3.4.0", "faults.json"))
        self.assertTrue(faults.unhealthy)
        for version, rate in (("3.0.0", 0.0), ("3.1.0", 0.004), ("3.2.0", 0.008), ("3.3.0", 0.0)):
            faults = self.app.Faults.load(os.path.join(HERE, "releases", version, "faults.json"))
            self.assertEqual(faults.error_rate, rate, version)
            self.assertGreater(faults.delay_ms, 0, version)

    def test_no_file_means_no_faults(self):
        faults = self.app.Faults.load(os.path.join(HERE, "releases", "1.0.0", "faults.json"))
        self.assertEqual((faults.error_rate, faults.delay_ms), (0.0, 0.0))
        self.assertFalse(any(faults.fails_next() for _ in range(1000)))

    def test_bad_files_name_the_key(self):
        for text, needle in (
            ("[1]", "must be an object"),
            ('{"error-rate": 2}', "error-rate must be a number from 0 to 1"),
            ('{"error-rate": true}', "error-rate must be a number"),
            ('{"delay-ms": -1}', "delay-ms must be a number"),
            ('{"error_rate": 0.1}', "unknown key 'error_rate'"),
            ('{"unhealthy": "yes"}', "unhealthy must be true or false"),
            ("{", "not readable JSON"),
        ):
            with self.assertRaises(ValueError) as e:
                self.load(text)
            self.assertIn(needle, str(e.exception))
            self.assertIn("faults.json", str(e.exception))


if __name__ == "__main__":
    unittest.main()
