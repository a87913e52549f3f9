"""Tests of the example environment: python3 -m unittest -v (from this directory).

The bucketing vectors are the ones of sluice_delivery::flags (and of the
table in docs/delivery.md); the integration test starts the environment on
free loopback ports with two tiny releases, switches a slot's link, and
checks the router's weights, flags and access log.
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import localenv  # noqa: E402

VECTORS = [
    ("release-2.0.0", "user-1", 4452),
    ("release-2.0.0", "user-2", 8056),
    ("release-2.0.0", "alice", 7182),
    ("new-checkout", "bob", 8140),
    ("x", "", 6652),
]

TINY_APP = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
VERSION = open(__file__.replace("app.py", "VERSION")).read().strip()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('{"version": "%s"}' % VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


class Bucketing(unittest.TestCase):
    def test_vectors(self):
        for flag, key, b in VECTORS:
            self.assertEqual(localenv.bucket(flag, key), b, (flag, key))
            self.assertTrue(localenv.in_rollout(flag, key, b / 100 + 0.01))
            self.assertFalse(localenv.in_rollout(flag, key, b / 100 - 0.01))
            self.assertTrue(localenv.in_rollout(flag, key, 100))
            self.assertFalse(localenv.in_rollout(flag, key, 0))

    def test_share_is_close_to_percent(self):
        n = sum(localenv.in_rollout("release-2.0.0", "user-{}".format(i), 10.0) for i in range(10000))
        self.assertTrue(800 <= n < 1200, n)


class Routing(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="localenv-route-")

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_flag_wins_for_users_weights_otherwise(self):
        write_json(os.path.join(self.root, "weights.json"), {"routes": [
            {"slot": "blue", "version": "1.0.0", "weight": 75},
            {"slot": "green", "version": "2.0.0", "weight": 25},
            {"slot": "idle", "version": "0.1.0", "weight": 0}]})
        write_json(os.path.join(self.root, "flags.json"), {"flags": {
            "release-2.0.0": {"on": "green", "off": "blue", "percent": 50.0}}})
        self.assertEqual(localenv.choose_slot(self.root, "user-1")[0], "green")  # 4452 < 5000
        self.assertEqual(localenv.choose_slot(self.root, "user-2")[0], "blue")  # 8056
        rng = random.Random(7)
        picks = [localenv.choose_slot(self.root, None, rng)[0] for _ in range(4000)]
        self.assertNotIn("idle", picks)
        self.assertTrue(900 <= picks.count("green") <= 1100, picks.count("green"))

    def split(self, weight):
        write_json(os.path.join(self.root, "weights.json"), {"routes": [
            {"slot": "blue", "version": "1.0.0", "weight": 100 - weight},
            {"slot": "green", "version": "2.0.0", "weight": weight}]})

    def test_affinity_keeps_a_user_on_one_slot_and_only_moves_users_to_the_candidate(self):
        write_json(os.path.join(self.root, "routing.json"), {"affinity": {"header": "X-User"}})
        users = ["user-{}".format(i) for i in range(1000)]
        rng = random.Random(3)
        on = {}
        for weight in (20, 50):
            self.split(weight)
            on[weight] = {}
            for u in users:
                picks = {localenv.choose_slot(self.root, u, rng, headers={"x-user": u})[0] for _ in range(3)}
                self.assertEqual(len(picks), 1, u)
                on[weight][u] = picks.pop()
        for weight in (20, 50):
            n = sum(1 for u in users if on[weight][u] == "green")
            self.assertTrue(abs(n - weight * 10) <= 60, (weight, n))
        # Growing the weight only moves users from blue to green.
        self.assertFalse([u for u in users if on[20][u] == "green" and on[50][u] == "blue"])
        # Without the key: random by the weights.
        self.split(20)
        picks = [localenv.choose_slot(self.root, None, rng, headers={})[0] for _ in range(2000)]
        self.assertTrue(300 <= picks.count("green") <= 500, picks.count("green"))

    def test_affinity_by_cookie(self):
        write_json(os.path.join(self.root, "routing.json"), {"affinity": {"cookie": "sid"}})
        self.split(50)
        got = {localenv.choose_slot(self.root, None, headers={"Cookie": "a=1; sid=abc"}) for _ in range(20)}
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got.pop()[1], "affinity")
        self.assertEqual(localenv.choose_slot(self.root, None, headers={"Cookie": "a=1"})[1], "weights")

    def test_canary_header_always_never_otherwise_weights(self):
        write_json(os.path.join(self.root, "routing.json"), {"canary_header": {
            "name": "X-Canary", "candidate": "green", "stable": "blue"}})
        self.split(0)
        for _ in range(20):
            self.assertEqual(localenv.choose_slot(self.root, None, headers={"x-canary": "always"}),
                             ("green", "header always"))
        self.split(100)
        self.assertEqual(localenv.choose_slot(self.root, "user-1", headers={"X-Canary": "never"}),
                         ("blue", "header never"))
        self.assertEqual(localenv.choose_slot(self.root, None, headers={"X-Canary": "maybe"}),
                         ("green", "weights"))
        # The header beats a flag; without a candidate (promoted) it does nothing.
        write_json(os.path.join(self.root, "flags.json"), {"flags": {
            "release-2.0.0": {"on": "blue", "off": "blue", "percent": 100.0}}})
        self.assertEqual(localenv.choose_slot(self.root, "user-1", headers={"X-Canary": "always"})[0], "green")
        write_json(os.path.join(self.root, "routing.json"), {"canary_header": {
            "name": "X-Canary", "candidate": None, "stable": None}})
        self.assertEqual(localenv.choose_slot(self.root, "user-1", headers={"X-Canary": "always"})[0], "blue")

    def test_falls_back_to_the_stable_slot(self):
        write_json(os.path.join(self.root, "state.json"), {"stable": {"slot": "blue", "version": "1.0.0"}})
        self.assertEqual(localenv.choose_slot(self.root, None), ("blue", "stable"))


class Environment(unittest.TestCase):
    """up --detach, a link switch, routing through the router, down."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="localenv-")
        self.root = os.path.join(self.dir, "prod")
        for v in ("1.0.0", "2.0.0"):
            rel = os.path.join(self.root, "releases", v)
            os.makedirs(rel)
            with open(os.path.join(rel, "app.py"), "w") as f:
                f.write(TINY_APP)
            with open(os.path.join(rel, "VERSION"), "w") as f:
                f.write(v)
        os.makedirs(os.path.join(self.root, "slots"))
        self.ports = {"blue": free_port(), "green": free_port()}
        self.router = free_port()
        self.config = os.path.join(self.dir, "env.json")
        write_json(self.config, {
            "root": "prod",
            "slots": self.ports,
            "router": self.router,
            "command": [sys.executable, "{release}/app.py", "{port}"],
        })
        self.link("blue", "1.0.0")
        self.env(["up", "--detach"])

    def tearDown(self):
        self.env(["down"])
        shutil.rmtree(self.dir)

    def env(self, args):
        out = subprocess.run([sys.executable, os.path.join(HERE, "localenv.py"), "--config", self.config] + args,
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)

    def link(self, slot, version):
        tmp = os.path.join(self.root, "slots", "." + slot + ".tmp")
        os.symlink(os.path.join("..", "releases", version), tmp)
        os.replace(tmp, os.path.join(self.root, "slots", slot))

    def get(self, url, headers=None, expect=None, timeout=30):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(req, timeout=2) as r:
                    last = json.loads(r.read())["version"]
                    if expect is None or last == expect:
                        return last
            except OSError:
                pass
            time.sleep(0.1)
        self.fail("{} did not answer {!r} (last {!r})".format(url, expect, last))

    def access_log_until(self, ready, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            with open(os.path.join(self.root, "access.log")) as f:
                entries = [json.loads(line) for line in f if line.endswith("\n")]
            if ready(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def test_switch_route_and_log(self):
        blue = "http://127.0.0.1:{}/version".format(self.ports["blue"])
        self.assertEqual(self.get(blue), "1.0.0")
        self.link("blue", "2.0.0")  # the supervisor restarts the slot
        self.assertEqual(self.get(blue, expect="2.0.0"), "2.0.0")
        self.link("green", "1.0.0")
        self.get("http://127.0.0.1:{}/version".format(self.ports["green"]), expect="1.0.0")
        write_json(os.path.join(self.root, "weights.json"), {"routes": [
            {"slot": "green", "version": "1.0.0", "weight": 100}, {"slot": "blue", "version": "2.0.0", "weight": 0}]})
        router = "http://127.0.0.1:{}/version".format(self.router)
        self.assertEqual({self.get(router) for _ in range(10)}, {"1.0.0"})
        write_json(os.path.join(self.root, "flags.json"), {"flags": {
            "release-2.0.0": {"on": "blue", "off": "green", "percent": 50.0}}})
        self.assertEqual(self.get(router, {"X-User": "user-1"}), "2.0.0")
        self.assertEqual(self.get(router, {"X-User": "user-2"}), "1.0.0")
        # The router writes the access entry after it has answered (as nginx
        # does), so wait for it rather than read the file at once.
        entries = self.access_log_until(lambda e: e and e[-1]["user"] == "user-2")
        self.assertEqual(entries[-1]["slot"], "green")
        self.assertEqual(entries[-1]["user"], "user-2")
        self.assertEqual(entries[-1]["status"], 200)
        self.assertIn("duration_ms", entries[-1])


if __name__ == "__main__":
    unittest.main()
