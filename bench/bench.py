#!/usr/bin/env python3
"""sluice benchmarks: measured from outside the runner, printed as one table.

Run through `bench/run.sh` (which builds the runner, the plugins, scan-native
and installs wasmtime-cli first). Everything here only reads the release
binary, dist/plugins and the tools under bench/.tools; all scratch state goes
to bench/.work (deleted and recreated on every run).

Not a test: nothing is asserted, only reported. Targets are printed next to
the figures with `met` / `NOT met`.

Environment:
  BENCH_QUICK=1     fewer repetitions (a smoke run of the suite, ~1 minute)
  BENCH_ONLY=1,2,6  run only these sections (7: the fleet; needs nats-server)
  BENCH_SCAN_MB=50  size of the generated tree for the scan benchmark
"""

import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
SLUICE = Path(os.environ.get("BENCH_SLUICE", ROOT / "target" / "release" / "sluice"))
WASMTIME = BENCH / ".tools" / "bin" / "wasmtime"
SCAN_NATIVE = ROOT / "target" / "release" / "scan-native"
PLUGINS = ROOT / "dist" / "plugins"
NOOP = PLUGINS / "noop.wasm"
NOOP_CMD = ROOT / "target" / "wasm32-wasip2" / "release" / "noop-cmd.wasm"

QUICK = os.environ.get("BENCH_QUICK") == "1"
ONLY = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
SCAN_MB = int(os.environ.get("BENCH_SCAN_MB", "50"))

ROWS = []  # (section, figure, value, target/ratio note)


def row(section, figure, value, note=""):
    ROWS.append((section, figure, value, note))
    print(f"  {figure}: {value}  {note}", file=sys.stderr, flush=True)


def want(section):
    return not ONLY or section in ONLY


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# ---------------------------------------------------------------- statistics

def pct(xs, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def med(xs):
    return statistics.median(xs)


def fms(x):
    return f"{x * 1000:.2f} ms" if x < 1 else f"{x:.2f} s"


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return num / den


# ------------------------------------------------------------------- machine

def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": sh(["nproc"]).strip(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "sluice": sh([str(SLUICE), "--version"]).strip(),
        "wasmtime": sh([str(WASMTIME), "--version"]).strip() if WASMTIME.exists() else "missing",
    }


# ------------------------------------------------------------------ pipelines

def pipeline(path, name, stages, workspace=None):
    """stages: list of (name, uses, needs, with_or_None, grants_or_None[, when])."""
    lines = ["version: 1", f"name: {name}"]
    if workspace:
        lines.append(f"workspace: {workspace}")
    lines.append("stages:")
    for sname, uses, needs, with_, grants, *when in stages:
        lines.append(f"  {sname}:")
        if when:
            lines.append(f"    when: {when[0]}")
        lines.append(f"    uses: {uses}")
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
        if with_:
            lines.append(f"    with: {with_}")
        if grants:
            lines.append(f"    grants: {grants}")
    path.write_text("\n".join(lines) + "\n")
    return path


def chain(n):
    p = WORK / "pipelines" / f"chain-{n}.yaml"
    if not p.exists():
        pipeline(p, f"chain-{n}", [(f"s{i}", NOOP, [f"s{i-1}"] if i else [], None, None) for i in range(n)])
    return p


def wide(n):
    p = WORK / "pipelines" / f"wide-{n}.yaml"
    if not p.exists():
        pipeline(p, f"wide-{n}", [(f"s{i}", NOOP, [], None, None) for i in range(n)])
    return p


CACHE = WORK / "cache-warm"
_state_seq = [0]


def fresh_state():
    _state_seq[0] += 1
    d = WORK / "state" / str(_state_seq[0])
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def sluice_run(pipe, cache=CACHE, json_events=True, timed=False, extra=(), must_pass=False):
    """Run `sluice run`; returns (wall seconds, events, peak RSS KiB or None).
    `must_pass`: a failed run is an error (the fleet figures are only
    meaningful for runs whose stages all ran)."""
    state = fresh_state()
    cmd = [str(SLUICE), "run", str(pipe), "--quiet", "--allow-unsigned",
           "--state-dir", str(state), "--cache-dir", str(cache), *extra]
    if json_events:
        cmd.append("--json")
    rss = None
    if timed:
        tv = state / "time-v.txt"
        cmd = ["/usr/bin/time", "-v", "-o", str(tv), *cmd]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    events = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    if timed:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv.read_text())
        rss = int(m.group(1)) if m else None
    if p.returncode not in ((0,) if must_pass else (0, 1)):
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    # State directories are kept until the next `bench/run.sh`: deleting
    # thousands of files here would slow every later run's file creation
    # (ext4 skips recently freed inodes for about 30 s), billing the
    # harness's cleanup to the runner.
    return wall, events, rss


def ts(e):
    return dt.datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()


def stage_times(events):
    """Per-stage (started, finished) timestamps, in event order."""
    started, out = {}, []
    for e in events:
        if e["event"] == "stage_started":
            started[e["stage"]] = ts(e)
        elif e["event"] == "stage_finished":
            out.append((e["stage"], started.get(e["stage"]), ts(e), e.get("duration_ms")))
    return out


# ------------------------------------------------------------------ sections

def warm_cache():
    shutil.rmtree(CACHE, ignore_errors=True)
    sluice_run(chain(1))


def s1_per_stage():
    print("[1] per-stage overhead", file=sys.stderr)
    runs = 2 if QUICK else 10
    start_finish, cycles, durs = [], [], []
    for _ in range(runs):
        _, ev, _ = sluice_run(chain(100))
        st = stage_times(ev)
        for i, (_, s, f, d) in enumerate(st):
            start_finish.append(f - s)
            durs.append(d / 1000)
            if i:
                cycles.append(f - st[i - 1][2])
    n = len(start_finish)
    row("1 per-stage", f"stage_started→stage_finished, {n} no-op stages ({runs}×100 chain), median / p99",
        f"{fms(med(start_finish))} / {fms(pct(start_finish, 99))}",
        "target median <1 ms, p99 <5 ms: "
        + ("met" if med(start_finish) < 0.001 and pct(start_finish, 99) < 0.005 else "NOT met"))
    row("1 per-stage", "  record duration_ms (runner's own), median / p99",
        f"{fms(med(durs))} / {fms(pct(durs, 99))}")
    row("1 per-stage", f"  full cycle in a chain (finished[i-1]→finished[i], incl. record write), {len(cycles)} gaps, median / p99",
        f"{fms(med(cycles))} / {fms(pct(cycles, 99))}",
        "met" if med(cycles) < 0.001 and pct(cycles, 99) < 0.005 else "NOT met")
    reps = {1: 3 if QUICK else 15, 100: 2 if QUICK else 7, 1000: 1 if QUICK else 3}
    pts, medians = [], {}
    for n_, r in reps.items():
        ws = [sluice_run(chain(n_), json_events=False)[0] for _ in range(r)]
        medians[n_] = med(ws)
        pts += [(n_, w) for w in ws]
    row("1 per-stage", "  total wall, chain of N=1 / 100 / 1000 (median)",
        " / ".join(fms(medians[k]) for k in (1, 100, 1000)))
    s100 = (medians[100] - medians[1]) / 99
    s1000 = (medians[1000] - medians[1]) / 999
    row("1 per-stage", "  slope of wall time vs N: N=1→100 / N=1→1000",
        f"{s100 * 1000:.2f} ms / {s1000 * 1000:.2f} ms per stage",
        "met (<1 ms)" if s100 < 0.001 else "NOT met (<1 ms)")


def s2_whole_process():
    print("[2] whole process, 9-stage chain", file=sys.stderr)
    p9 = chain(9)
    native = WORK / "native-chain.sh"
    native.write_text("#!/bin/sh\nset -e\n" + "/bin/true\n" * 9)
    native.chmod(0o755)
    # (a) wasmtime run: the noop-cmd component (a wasi:cli/run command with the
    # same no-op body). `--invoke describe()` on noop.wasm itself is tried too
    # and reported if wasmtime can instantiate it (it cannot satisfy the
    # sluice:stage imports, see docs/performance.md).
    wt_cache_cfg = WORK / "wasmtime-cache.toml"
    wt_cache_cfg.write_text(f'[cache]\ndirectory = "{WORK / "wasmtime-cache"}"\n')
    wt = WORK / "wasmtime-chain.sh"
    wt.write_text("#!/bin/sh\nset -e\n" + f'"{WASMTIME}" run -C cache-config="{wt_cache_cfg}" "{NOOP_CMD}"\n' * 9)
    wt.chmod(0o755)
    wt_pre = WORK / "noop-cmd.cwasm"
    sh([str(WASMTIME), "compile", str(NOOP_CMD), "-o", str(wt_pre)])
    wtp = WORK / "wasmtime-precompiled-chain.sh"
    wtp.write_text("#!/bin/sh\nset -e\n" + f'"{WASMTIME}" run --allow-precompiled "{wt_pre}"\n' * 9)
    wtp.chmod(0o755)
    variants = {
        "sluice run (9-stage chain)": lambda: sluice_run(p9, json_events=False)[0],
        "wasmtime run ×9 (cache on)": lambda: timed_cmd([str(wt)]),
        "wasmtime run --allow-precompiled ×9": lambda: timed_cmd([str(wtp)]),
        "/bin/true ×9 (sh script)": lambda: timed_cmd([str(native)]),
    }
    for f in variants.values():  # warm every cache
        f(); f()
    rounds = 5 if QUICK else 31
    res = {k: [] for k in variants}
    for _ in range(rounds):
        for k, f in variants.items():  # interleaved a,b,c,d,a,b,c,d...
            res[k].append(f())
    m = {k: med(v) for k, v in res.items()}
    s, w, n = m["sluice run (9-stage chain)"], m["wasmtime run ×9 (cache on)"], m["/bin/true ×9 (sh script)"]
    for k, v in res.items():
        row("2 whole process", f"{k}, median of {rounds} (p90)", f"{fms(m[k])} ({fms(pct(v, 90))})")
    row("2 whole process", "ratio sluice / native chain", f"{s / n:.2f}×",
        "target ≤2×: " + ("met" if s / n <= 2 else "NOT met"))
    row("2 whole process", "ratio sluice / wasmtime-run chain", f"{s / w:.2f}×",
        "target <1×: " + ("met" if s < w else "NOT met"))
    row("2 whole process", "ratio sluice / wasmtime-run precompiled chain",
        f"{s / m['wasmtime run --allow-precompiled ×9']:.2f}×")
    # Where a `sluice run` goes: one single-stage run vs an empty process.
    one = [sluice_run(chain(1), json_events=False)[0] for _ in range(5 if QUICK else 21)]
    ver = [timed_cmd([str(SLUICE), "--version"]) for _ in range(5 if QUICK else 21)]
    row("2 whole process", "  sluice run of 1 no-op stage / `sluice --version`",
        f"{fms(med(one))} / {fms(med(ver))}")


def timed_cmd(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def s3_cold_start():
    print("[3] cold start", file=sys.stderr)
    plugins = sorted(PLUGINS.glob("*.wasm"))
    # The Python, JavaScript and C stages, when their toolchains have built
    # them (scripts/setup-guest-toolchains.sh, then examples/stages/*/build.sh;
    # the test suite builds them into target/stage-languages).
    guests = {"python": "license-check.wasm", "javascript": "package-policy.wasm", "c": "size-budget.wasm"}
    for lang, name in guests.items():
        built = next((p for p in (ROOT / "examples" / "stages" / lang / name,
                                  ROOT / "target" / "stage-languages" / name) if p.exists()), None)
        if built:
            plugins.append(built)
        else:
            row("3 cold start", f"{lang} stage ({name})", "not built",
                f"run scripts/setup-guest-toolchains.sh and examples/stages/{lang}/build.sh")
    # `when: failure` with no upstream failure: every stage is skipped, so
    # only admission + compile (or cache load) of each plugin is measured.
    per = {}
    for p in plugins:
        pp = pipeline(WORK / "pipelines" / f"one-{p.stem}.yaml", f"one-{p.stem}",
                      [("gate", NOOP, [], None, None), ("x", p, ["gate"], None, None, "failure")])
        cold_cache = WORK / f"cache-cold-{p.stem}"
        shutil.rmtree(cold_cache, ignore_errors=True)
        if p != NOOP:  # the gate's plugin is compiled beforehand, so only `p` compiles
            sluice_run(chain(1), cache=cold_cache)
        mine = lambda e: e["event"] == "plugin_loaded" and e["plugin"].endswith(p.name)
        _, ev, _ = sluice_run(pp, cache=cold_cache)
        cold = [e["millis"] for e in ev if mine(e) and not e["cached"]]
        warm = []
        for _ in range(5):
            _, ev2, _ = sluice_run(pp, cache=cold_cache)
            warm += [e["millis"] for e in ev2 if mine(e) and e["cached"]]
        c = cold[0] if cold else float("nan")
        w = med(warm) if warm else float("nan")
        per[p.stem] = c
        row("3 cold start", f"{p.name} ({p.stat().st_size / 1e6:.2f} MB): compile, empty cache / cache load (median of 5)",
            f"{c} ms / {w if w else '<1'} ms", f"≥{c}× (load under 1 ms; events have ms resolution)" if not w else f"{c / w:.0f}×")
        shutil.rmtree(cold_cache, ignore_errors=True)
    pipe = pipeline(WORK / "pipelines" / "all-plugins.yaml", "all-plugins",
                    [("gate", NOOP, [], None, None)]
                    + [(f"p_{p.stem}", p, ["gate"], None, None, "failure") for p in plugins])
    cold_cache = WORK / "cache-cold-all"
    shutil.rmtree(cold_cache, ignore_errors=True)
    t_cold, ev, _ = sluice_run(pipe, cache=cold_cache)
    t_warm = med([sluice_run(pipe, cache=cold_cache)[0] for _ in range(5)])
    started = ts(ev[0])
    last = max(ts(e) for e in ev if e["event"] == "plugin_loaded")
    row("3 cold start", f"all {len(plugins)} plugins in one run (parallel compile, {os.cpu_count()} cores): "
        "run_started→last plugin_loaded / sum of single compiles",
        f"{fms(last - started)} / {fms(sum(per.values()) / 1000)}")
    row("3 cold start", "  whole run of those plugins, empty cache / warm cache", f"{fms(t_cold)} / {fms(t_warm)}",
        f"{t_cold / t_warm:.0f}×")
    row("3 cold start", "  Winch", "not measured", "the engine config is fixed to Cranelift (crates/host/src/engine.rs)")
    shutil.rmtree(cold_cache, ignore_errors=True)


def s4_scale():
    print("[4] scale", file=sys.stderr)
    sizes = [100, 500, 1000]
    for kind, gen in (("deep (chain)", chain), ("wide (independent)", wide)):
        res = {}
        for n in sizes:
            reps = 1 if (QUICK or n == 1000) else 2
            runs = [sluice_run(gen(n), json_events=False, timed=True) for _ in range(reps)]
            res[n] = (med([r[0] for r in runs]), max(r[2] for r in runs))
        row("4 scale", f"{kind}: wall N=100 / 500 / 1000",
            " / ".join(fms(res[n][0]) for n in sizes),
            f"per stage {res[100][0] / 100 * 1000:.2f} / {res[500][0] / 500 * 1000:.2f} / "
            f"{res[1000][0] / 1000 * 1000:.2f} ms; ×{res[1000][0] / res[100][0]:.1f} for 10× stages "
            + ("(≈linear)" if res[1000][0] / res[100][0] < 13 else "(superlinear)"))
        row("4 scale", f"{kind}: peak RSS N=100 / 500 / 1000",
            " / ".join(f"{res[n][1] / 1024:.1f} MB" for n in sizes))
    runs = [sluice_run(chain(9), json_events=False, timed=True) for _ in range(3)]
    rss9 = max(r[2] for r in runs) / 1024
    row("4 scale", "peak RSS, 9-stage chain", f"{rss9:.1f} MB",
        "target <100 MB: " + ("met" if rss9 < 100 else "NOT met"))


def gen_tree(root, total_mb):
    """A deterministic source tree: ~100 KB files of code-like text, a few
    planted fake secrets (AWS key id, GitHub token, private key header)."""
    if root.exists():
        return
    rnd = random.Random(7)
    words = ("let fn return if else for while match struct impl pub use mod self "
             "value result error config path buffer count index name data item list map "
             "string option some none ok err async await move ref mut const static").split()
    exts = [".rs", ".py", ".js", ".go", ".txt", ".md"]
    target = total_mb * 1_000_000
    written, i = 0, 0
    secrets = [
        'aws_access_key_id = "AKIAZ7Q3XW5PLMNB2RTY"\n',
        'token = "ghp_4fG7hJ2kL9mN3pQ6rS8tV1wX5yZ0aB2cD4eF"\n',
        "-----BEGIN RSA PRIVATE KEY-----\n",
    ]
    while written < target:
        d = root / f"pkg{i // 50:03d}" / f"mod{(i // 10) % 5}"
        d.mkdir(parents=True, exist_ok=True)
        lines = []
        size = 0
        while size < 100_000:
            ind = "    " * rnd.randint(0, 3)
            line = ind + " ".join(rnd.choices(words, k=rnd.randint(3, 12))) + f" {rnd.randint(0, 99999)};\n"
            lines.append(line)
            size += len(line)
        if i % 97 == 3:
            lines.insert(len(lines) // 2, secrets[(i // 97) % len(secrets)])
        text = "".join(lines)
        (d / f"file{i:05d}{exts[i % len(exts)]}").write_text(text)
        written += len(text)
        i += 1


def s5_scan():
    print("[5] scan throughput", file=sys.stderr)
    tree = WORK.parent / ".scan-tree" / f"{SCAN_MB}mb"
    gen_tree(tree, SCAN_MB)
    if not (PLUGINS / "scan.wasm").exists() or not SCAN_NATIVE.exists():
        row("5 scan", "scan.wasm / scan-native", "missing", "not measured")
        return
    reps = 1 if QUICK else 3
    out = sh([str(SCAN_NATIVE), str(tree), "--quiet", "--repeat", str(reps + 1)])
    nat = [float(m) for m in re.findall(r"([\d.]+) MB/s", out)][1:]
    mb = float(re.search(r"([\d.]+) MB in", out).group(1))
    pipe = pipeline(WORK / "pipelines" / "scan.yaml", "scan",
                    [("scan", PLUGINS / "scan.wasm", [], "{ dependencies: false }", "{ workspace: read }")],
                    workspace=tree)
    sluice_run(pipe)  # compile
    inside, whole = [], []
    for _ in range(reps):
        state = fresh_state()
        subprocess.run([str(SLUICE), "run", str(pipe), "--quiet", "--allow-unsigned", "--json",
                        "--state-dir", str(state), "--cache-dir", str(CACHE)],
                       capture_output=True, text=True)
        log = next(state.glob("runs/*/logs/scan.log")).read_text()
        m = re.search(r"\(([\d.]+) MB/s\)", log)
        inside.append(float(m.group(1)))
        rec = json.loads(next(state.glob("runs/*/run.json")).read_text())
        whole.append(mb / (rec["stages"]["scan"]["duration_ms"] / 1000))
        shutil.rmtree(state, ignore_errors=True)
    n, w, ww = med(nat), med(inside), med(whole)
    row("5 scan", f"scan-native, {mb:.1f} MB tree (median of {reps})", f"{n:.1f} MB/s")
    row("5 scan", "scan.wasm inside sluice (guest-timed scan)", f"{w:.1f} MB/s",
        f"{w / n * 100:.0f}% of native; target ≥50%: " + ("met" if w / n >= 0.5 else "NOT met"))
    row("5 scan", "  same, whole stage (duration_ms: setup, scan, SARIF, artifact hashing)", f"{ww:.1f} MB/s",
        f"{ww / n * 100:.0f}% of native")


def custom_section(name, payload_len):
    def leb(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)
    nm = name.encode()
    body = leb(len(nm)) + nm
    return b"\x00" + leb(len(body) + payload_len) + body, payload_len


def s6_verify():
    print("[6] signature verification", file=sys.stderr)
    d = WORK / "verify"
    d.mkdir(parents=True, exist_ok=True)
    big = d / "noop-20mb.wasm"
    small = d / "noop.wasm"
    shutil.copy(NOOP, small)
    head, n = custom_section("sluice-bench-padding", 20 * 1024 * 1024 - NOOP.stat().st_size - 40)
    with open(big, "wb") as f:
        f.write(NOOP.read_bytes())
        f.write(head)
        f.write(os.urandom(n))
    env = dict(os.environ, SLUICE_KEY_PASSWORD="bench")
    key = d / "bench"
    sh([str(SLUICE), "key", "generate", "--out", str(key), "--force"], env=env)
    for f in (big, small):
        sh([str(SLUICE), "plugin", "sign", str(f), "--key", f"{key}.key"], env=env)
    reps = 3 if QUICK else 11
    res = {}
    for f in (big, small, big, small):
        ts_ = [timed_cmd([str(SLUICE), "plugin", "verify", str(f), "--key", f"{key}.pub"]) for _ in range(reps)]
        res.setdefault(f, []).extend(ts_)
    hs = [timed_cmd(["sha256sum", str(big)]) for _ in range(reps)]
    size = big.stat().st_size / 1e6
    b, s = med(res[big]), med(res[small])
    row("6 verify", f"sluice plugin verify, {size:.1f} MB component + bundle (median of {2 * reps})",
        fms(b), f"{size / b:.0f} MB/s")
    row("6 verify", f"  same, {small.stat().st_size / 1e6:.2f} MB noop.wasm (fixed cost)", fms(s))
    row("6 verify", "  sha256sum of the 20 MB file (hashing floor, with process start)", fms(med(hs)))


# --------------------------------------------------------------- 7. fleet

FIXTURE = PLUGINS / "fixture.wasm"
NATS_SERVER = os.environ.get("SLUICE_NATS_SERVER") or shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """A `sluice agent` (unsigned plugins allowed: the benchmarks measure
    the path, not the signature check), started and waited for."""

    def __init__(self, name, listen=None, nats=None, concurrency=2):
        self.name = name
        d = WORK / "agents" / name
        d.mkdir(parents=True, exist_ok=True)
        cfg = d / "agent.yaml"
        text = [f"name: {name}", "allow-unsigned: true", f"concurrency: {concurrency}",
                f"cache-dir: {d / 'cache'}", "workspace: shared", "heartbeat: 1s"]
        if nats:
            text.append(f'nats: {{ url: "{nats[0]}", namespace: {nats[1]} }}')
        cfg.write_text("\n".join(text) + "\n")
        cmd = [str(SLUICE), "agent", "--config", str(cfg)]
        if listen:
            cmd += ["--listen", f"unix:{listen}"]
        self.err = d / "stderr.txt"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "w"))
        t0 = time.time()
        while "taking jobs from" not in self.err.read_text():
            if self.proc.poll() is not None or time.time() - t0 > 60:
                raise RuntimeError(f"agent {name} did not start: {self.err.read_text()[-2000:]}")
            time.sleep(0.02)

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Nats:
    """`nats-server -js` on a free loopback port, store in bench/.work."""

    def __init__(self):
        self.port = free_port()
        store = WORK / "nats" / str(self.port)
        store.mkdir(parents=True)
        self.proc = subprocess.Popen([NATS_SERVER, "-js", "-sd", str(store), "-a", "127.0.0.1",
                                      "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        t0 = time.time()
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.time() - t0 > 10:
                    raise RuntimeError("nats-server did not start (scripts/setup-nats.sh installs it)")
                time.sleep(0.02)

    def url(self, namespace):
        return f"nats://127.0.0.1:{self.port}?namespace={namespace}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def sleepers(n, seconds="0.2"):
    p = WORK / "pipelines" / f"sleep-{n}.yaml"
    if not p.exists():
        with_ = f'{{ mode: exec, program: sleep, args: ["{seconds}"] }}'
        pipeline(p, f"sleep-{n}", [(f"s{i}", FIXTURE, [], with_, "{ exec: [sleep] }") for i in range(n)])
    return p


def s7_fleet():
    print("[7] fleet: warm local agent, RSS, dispatch overhead, throughput", file=sys.stderr)
    # (a) The warm local agent: a 9-stage no-op chain through `--agent` against
    # nine /bin/true, interleaved.
    sock = WORK / "agents" / "local.sock"
    local = Agent("local", listen=sock)
    try:
        p9 = chain(9)
        native = WORK / "native-chain.sh"
        native.write_text("#!/bin/sh\nset -e\n" + "/bin/true\n" * 9)
        native.chmod(0o755)
        variants = {
            "sluice run --agent unix: (9-stage chain, warm agent)":
                lambda: sluice_run(p9, json_events=False, extra=("--agent", f"unix:{sock}"), must_pass=True)[0],
            "sluice run (9-stage chain, in process)": lambda: sluice_run(p9, json_events=False)[0],
            "/bin/true ×9 (sh script)": lambda: timed_cmd([str(native)]),
        }
        for f in variants.values():
            f(); f()
        rounds = 5 if QUICK else 31
        res = {k: [] for k in variants}
        for _ in range(rounds):
            for k, f in variants.items():
                res[k].append(f())
        m = {k: med(v) for k, v in res.items()}
        for k, v in res.items():
            row("7 fleet", f"{k}, median of {rounds} (p90)", f"{fms(m[k])} ({fms(pct(v, 90))})")
        a = m["sluice run --agent unix: (9-stage chain, warm agent)"]
        n = m["/bin/true ×9 (sh script)"]
        row("7 fleet", "ratio warm agent / native chain", f"{a / n:.2f}×",
            "target <1.0×: " + ("met" if a < n else "NOT met"))
        # The same comparison per stage, without either side's fixed cost
        # (a runner process that creates a durable run, against one `sh`):
        # the slope from 1 to 100 stages, interleaved.
        natives = {}
        for k in (1, 100):
            f = WORK / f"native-chain-{k}.sh"
            f.write_text("#!/bin/sh\nset -e\n" + "/bin/true\n" * k)
            f.chmod(0o755)
            natives[k] = f
        slope_variants = {
            ("agent", 1): lambda: sluice_run(chain(1), json_events=False, extra=("--agent", f"unix:{sock}"),
                                             must_pass=True)[0],
            ("agent", 100): lambda: sluice_run(chain(100), json_events=False, extra=("--agent", f"unix:{sock}"),
                                               must_pass=True)[0],
            ("native", 1): lambda: timed_cmd([str(natives[1])]),
            ("native", 100): lambda: timed_cmd([str(natives[100])]),
        }
        sres = {k: [] for k in slope_variants}
        for _ in range(5 if QUICK else 15):
            for k, f in slope_variants.items():
                sres[k].append(f())
        per = {who: (med(sres[(who, 100)]) - med(sres[(who, 1)])) / 99 for who in ("agent", "native")}
        row("7 fleet", "per stage, slope 1→100 stages: warm agent / one `/bin/true` process",
            f"{fms(per['agent'])} / {fms(per['native'])}", f"{per['agent'] / per['native']:.2f}×")
        # (b) Agent RSS over many jobs through the socket (100-stage chains).
        runs = 10 if QUICK else 100
        rss = []
        for i in range(runs):
            sluice_run(chain(100), json_events=False, extra=("--agent", f"unix:{sock}"), must_pass=True)
            if i in (0, runs - 1):
                rss.append(local.rss_kib())
        row("7 fleet", f"agent VmRSS after 100 / {runs * 100} jobs (socket)",
            f"{rss[0] / 1024:.1f} MiB / {rss[-1] / 1024:.1f} MiB",
            f"end/start {rss[-1] / rss[0]:.2f}×")
    finally:
        local.stop()
    # (c) Dispatch overhead per remote stage, and (d) throughput, over NATS.
    nats = Nats()
    try:
        url = nats.url("bench")
        agents = [Agent("n1", nats=(f"nats://127.0.0.1:{nats.port}", "bench"), concurrency=8)]
        try:
            runs = 2 if QUICK else 5
            local_sf, remote_sf = [], []
            sluice_run(chain(100), extra=("--executor", url), must_pass=True)  # warm the agent
            for _ in range(runs):
                for sf, extra in ((local_sf, ()), (remote_sf, ("--executor", url))):
                    _, ev, _ = sluice_run(chain(100), extra=extra, must_pass=True)
                    sf += [f - s for _, s, f, _ in stage_times(ev) if s is not None]
            over = med(remote_sf) - med(local_sf)
            row("7 fleet", f"stage_started→stage_finished, {runs}×100 no-op chain: in process / one NATS agent (median)",
                f"{fms(med(local_sf))} / {fms(med(remote_sf))}")
            row("7 fleet", "dispatch overhead per remote stage (difference of medians)", fms(over),
                "target <2 ms: " + ("met" if over < 0.002 else "NOT met"))
            walls = {}
            for k in (1, 2, 3):
                while len(agents) < k:
                    agents.append(Agent(f"n{len(agents) + 1}", nats=(f"nats://127.0.0.1:{nats.port}", "bench"),
                                        concurrency=8))
                ws = [sluice_run(sleepers(300), json_events=False,
                                 extra=("--executor", url, "--jobs", "64"), must_pass=True)[0]
                      for _ in range(1 if QUICK else 3)]
                walls[k] = med(ws)
                row("7 fleet", f"300 stages × `sleep 0.2`, {k} agent(s) × 8 slots, --jobs 64 (median wall)",
                    fms(walls[k]), f"ideal {300 * 0.2 / (8 * k):.1f} s")
            row("7 fleet", "throughput speedup 1 → 3 agents", f"{walls[1] / walls[3]:.2f}×",
                "target ≥2.5×: " + ("met" if walls[1] / walls[3] >= 2.5 else "NOT met"))
        finally:
            for a in agents:
                a.stop()
    finally:
        nats.stop()


def table(m):
    out = []
    out.append("## Machine\n")
    out.append(f"- nproc: {m['nproc']}, CPU: {m['cpu']}, memory: {m['memory']}, kernel: {m['kernel']}")
    build = "release, thin LTO" if SLUICE.parent.name == "release" else f"{SLUICE}"
    out.append(f"- {m['sluice']} ({build}); {m['wasmtime']}; run {m['date']}"
               + (" (BENCH_QUICK)" if QUICK else ""))
    out.append("")
    out.append("| # | figure | value | ratio / target |")
    out.append("|---|---|---|---|")
    for sec, fig, val, note in ROWS:
        out.append(f"| {sec} | {fig} | {val} | {note} |")
    return "\n".join(out)


def main():
    if not SLUICE.exists() or not NOOP.exists():
        sys.exit("build first: bench/run.sh builds the runner and the plugins")
    # The previous run's scratch is moved aside and deleted after the
    # measurements, for the same reason state directories are kept (see
    # `sluice_run`).
    old = WORK.with_name(WORK.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if WORK.exists():
        WORK.rename(old)
    (WORK / "pipelines").mkdir(parents=True)
    m = machine()
    warm_cache()
    for sec, f in (("1", s1_per_stage), ("2", s2_whole_process), ("3", s3_cold_start),
                   ("4", s4_scale), ("5", s5_scan), ("6", s6_verify), ("7", s7_fleet)):
        if want(sec):
            # Start each section with the disk quiet: the 1000-stage runs of
            # one section leave seconds of writeback and a busy ext4 journal
            # that would bill the next section's syncs (the native chain
            # never touches the disk, so only sluice would pay).
            subprocess.run(["sync"], check=False)
            time.sleep(2)
            try:
                f()
            except Exception as e:  # report, keep going: partial numbers beat none
                row(sec, "error", f"{type(e).__name__}: {str(e)[:300]}".replace("|", "/").replace("\n", " "))
    t = table(m)
    print(t)
    (WORK / "results.md").write_text(t + "\n")
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    main()
