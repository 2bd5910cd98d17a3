"""Benchmark 2: what going through HAProxy costs a client of the Wt demo app.

One demo app instance (roles/wt_app/files/wtstack_demo.py on the real Wt from witty-for-python) and
one HAProxy in front of it with the configuration the haproxy role renders for that single instance
(adapted to run here like benchmark 1's). The same wrk load goes to the app directly and through
HAProxy, in interleaved rounds, for three kinds of request:

- page: `GET /`, a page load that opens a Wt session (Wt answers with its bootstrap page);
- sticky: `GET /?wtd=<id>&js=no`, a request of an existing session (one session per connection),
  which renders the plain-HTML page of that session's application;
- static: a 10 KiB file from the docroot.

Wt runs in a Python >= 3.12 venv kept under .cache/ (created on first use). Everything listens on
127.76.<slot>.0/24. Every process started here is stopped here, by pid.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import fleet

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "roles" / "wt_app" / "files" / "wtstack_demo.py"
VENV = REPO / ".cache" / "bench-wt-venv"
WITTY = "witty-for-python==0.1.2"
NETWORK = "127.76."
LB_PORT = 8080
APP_PORT = 20000
CONNECTIONS = 8
STATIC_BYTES = 10 * 1024
# Short, so that the sessions page loads open (thousands per measurement) expire during the run
# instead of piling up; the sticky sessions are created just before each measurement that uses them.
SESSION_TIMEOUT_S = 10
# Page loads last in a round, and Wt is restarted after each: the thousands of sessions one page-load
# run leaves behind slow Wt down several times over for seconds, which would bias whatever runs next.
KINDS = {
    "static": f"static: `GET /static.css` ({STATIC_BYTES // 1024} KiB from the docroot)",
    "sticky": "sticky: `GET /?wtd=<id>&js=no` (existing session)",
    "page": "page load: `GET /` (opens a Wt session)",
}
TARGETS = ("direct", "haproxy")
# Wt refuses (403) a session's request whose User-Agent differs from the one that opened it.
USER_AGENT = "wtstack-bench"

WT_CONFIG = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- As roles/wt_app/templates/wt_config.xml.j2 renders it, with a short session timeout. -->
<server>
  <application-settings location="*">
    <session-management>
      <shared-process><num-processes>1</num-processes></shared-process>
      <tracking>URL</tracking>
      <reload-is-new-session>true</reload-is-new-session>
      <timeout>{SESSION_TIMEOUT_S}</timeout>
      <server-push-timeout>50</server-push-timeout>
    </session-management>
    <debug>false</debug>
    <log-file></log-file>
    <log-config>* -debug</log-config>
    <session-id-length>16</session-id-length>
    <web-sockets>true</web-sockets>
    <trusted-proxy-config>
      <original-ip-header>X-Forwarded-For</original-ip-header>
      <trusted-proxies><proxy>127.0.0.0/8</proxy></trusted-proxies>
    </trusted-proxy-config>
  </application-settings>
</server>
"""

# One connection per wrk thread, so a thread's connection keeps to its own session.
WRK_SCRIPT = """
local count = 0
function setup(thread)
  count = count + 1
  thread:set("index", count)
end
function init(args)
  local path = args[1]
  if args[index + 1] then path = path .. "?wtd=" .. args[index + 1] .. "&js=no" end
  req = wrk.format("GET", path, {["User-Agent"] = "@USER_AGENT@"})
end
function request() return req end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("@USER_AGENT@", USER_AGENT)


class Unavailable(Exception):
    """The benchmark cannot run here; the message says why (it goes into the page)."""


def _python_version(python):
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=False).stdout.split()
        return tuple(int(x) for x in out)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return ()


def find_python():
    """A Python >= 3.12 interpreter: pyenv's, else python3.13 / python3.12 on PATH."""
    candidates = []
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for version in ("3.13", "3.12"):
        candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python"), reverse=True)
    candidates += [found for name in ("python3.13", "python3.12") if (found := shutil.which(name))]
    for python in candidates:
        if _python_version(python) >= (3, 12):
            return python
    return None


def ensure_venv(log):
    """The venv's python, with witty-for-python installed; created on first use."""
    python = VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import witty_for_python"],
                                          capture_output=True, check=False).returncode == 0:
        return python
    base = find_python()
    if base is None:
        raise Unavailable("no Python >= 3.12 found (pyenv versions 3.12/3.13, python3.13 or python3.12 on PATH); "
                          "witty-for-python needs one")
    log(f"  creating {VENV} with {base} and {WITTY}")
    shutil.rmtree(VENV, ignore_errors=True)
    for command in ([base, "-m", "venv", str(VENV)], [str(python), "-m", "pip", "install", "-q", WITTY]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            raise Unavailable(f"`{' '.join(map(str, command))}` failed: {(result.stderr or result.stdout)[-500:]}")
    return python


def listening(address, port):
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


def free_block():
    for slot in range(201, 255):
        base = f"{NETWORK}{slot}."
        if not listening(base + "1", LB_PORT) and not listening(base + "2", APP_PORT):
            return base
    raise RuntimeError(f"no free {NETWORK}x.0/24 block")


def haproxy_config(workdir, lb_address, app_address):
    """The role's haproxy.cfg and map for one instance, adapted like benchmark 1's; and the instance."""
    groups = {"all": ["lb1", "app1"], "haproxy": ["lb1"], "wt": ["app1"], "ungrouped": []}
    hostvars = {"lb1": {"ansible_host": lb_address},
                "app1": {"ansible_host": app_address, "wt_instances": 1, "wt_base_port": APP_PORT}}
    topology = fleet.build_topology(groups, hostvars).to_dict()
    map_path = workdir / "proxy.map"
    sock = workdir / "proxy.sock"
    files = fleet.render_role_files(topology, map_path, {
        "haproxy_bind_address": lb_address, "haproxy_bind_port": LB_PORT, "haproxy_stats_socket_path": str(sock)})
    map_path.write_text(files.map_text)
    config_path = workdir / "proxy.cfg"
    config_path.write_text(fleet.adapt(files.config, nbthread=1, stats_socket=sock, server_close=False))
    return config_path, topology["instances"][0]


def wait_for(address, port, process, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log_path.name}: exited:\n{log_path.read_text()[-3000:]}")
        if listening(address, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout} s; see {log_path}")


def http_get(url):
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def open_sessions(direct_url, prefix, count):
    """count sessions with their application created (the follow-up of a page load does that)."""
    ids = []
    for dummy in range(count):
        status, body = http_get(direct_url + "/")
        match = re.search(r"wtd=(" + re.escape(prefix) + r"[A-Za-z0-9]+)", body)
        if status != 200 or not match:
            raise RuntimeError(f"no session id in Wt's answer to GET / ({status})")
        ids.append(match.group(1))
        http_get(f"{direct_url}/?wtd={ids[-1]}&js=no")
    return ids


def applications_created(direct_url):
    return json.loads(http_get(direct_url + "/whoami")[1])["sessions_created"]


def run_wrk(url, path, seconds, script, session_ids=(), cpu=None):
    command = ["wrk", "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "-s", str(script),
               url, "--", path, *session_ids]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^RESULT (\{.*\})$", result.stdout, re.M)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return json.loads(match.group(1))


def cpu_ns(pid):
    """CPU time of the process, all threads (utime + stime of /proc/PID/stat), in nanoseconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def measure(settings, workdir, log, start, stop):
    """Raw measurements, or {"unavailable": reason}. start/stop: run.py's process registry."""
    try:
        python = ensure_venv(log)
    except Unavailable as reason:
        log(f"  proxy overhead not measured: {reason}")
        return {"unavailable": str(reason)}
    workdir = Path(workdir) / "proxy-overhead"
    workdir.mkdir(parents=True, exist_ok=True)
    docroot = workdir / "docroot"
    docroot.mkdir(exist_ok=True)
    (docroot / "static.css").write_text(("/* wtstack benchmark */\n" + "a { color: #123456; }\n" * 500)[:STATIC_BYTES])
    (workdir / "wt_config.xml").write_text(WT_CONFIG)
    script = workdir / "proxy.lua"
    script.write_text(WRK_SCRIPT)

    block = free_block()
    lb_address, app_address = block + "1", block + "2"
    config, instance = haproxy_config(workdir, lb_address, app_address)
    # Wt on CPU 0; HAProxy and wrk on CPU 1 (benchmark 1 pins the same way: the process under test alone).
    pinned = (os.cpu_count() or 1) > 1
    app_cpu, client_cpu = (0, 1) if pinned else (None, None)
    urls = {"direct": f"http://{app_address}:{APP_PORT}", "haproxy": f"http://{lb_address}:{LB_PORT}"}
    paths = {"page": "/", "sticky": "/", "static": "/static.css"}

    wt_log, lb_log = workdir / "wt.log", workdir / "haproxy.log"
    processes = []
    results = []
    wt_command = [str(python), str(DEMO), "--docroot", f"{docroot};/static.css", "--http-address", app_address,
                  "--http-port", str(APP_PORT), "--session-id-prefix", instance["prefix"],
                  "--config", str(workdir / "wt_config.xml")]
    try:
        wt = start(wt_command, wt_log, cpu=app_cpu)
        processes.append(wt)
        wait_for(app_address, APP_PORT, wt, wt_log)
        # Only now: a health check that finds Wt not listening yet marks it down for rise x inter.
        lb = start(["haproxy", "-db", "-f", str(config)], lb_log, cpu=client_cpu)
        processes.append(lb)
        wait_for(lb_address, LB_PORT, lb, lb_log)

        def wait_until_served(timeout=15):
            deadline = time.monotonic() + timeout
            for target, url in urls.items():
                while True:
                    status, body = http_get(url + "/static.css")
                    if status == 200 and len(body) == STATIC_BYTES:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{target}: GET /static.css answered {status}, {len(body)} bytes")
                    time.sleep(0.2)

        wait_until_served()

        def restart_wt():
            nonlocal wt
            stop(wt)
            processes.remove(wt)
            wt = start(wt_command, wt_log, cpu=app_cpu)
            processes.append(wt)
            wait_for(app_address, APP_PORT, wt, wt_log)
            wait_until_served()

        def one(kind, target, seconds, round_number):
            ids = open_sessions(urls["direct"], instance["prefix"], CONNECTIONS) if kind == "sticky" else ()
            applications = applications_created(urls["direct"])
            lb_before, wt_before = cpu_ns(lb.pid), cpu_ns(wt.pid)
            measured = run_wrk(urls[target], paths[kind], seconds, script, ids, cpu=client_cpu)
            measured.update(kind=kind, target=target, round=round_number,
                            lb_cpu_ns=cpu_ns(lb.pid) - lb_before, wt_cpu_ns=cpu_ns(wt.pid) - wt_before,
                            # A sticky request that lost its session would make Wt create a new application.
                            applications_created=applications_created(urls["direct"]) - applications)
            return measured

        if settings["warmup_seconds"]:
            for kind in KINDS:
                for target in TARGETS:
                    one(kind, target, settings["warmup_seconds"], -1)
                    if kind == "page":
                        restart_wt()
        for round_number in range(settings["rounds"]):
            for kind in KINDS:
                order = TARGETS if round_number % 2 == 0 else tuple(reversed(TARGETS))
                for target in order:
                    measured = one(kind, target, settings["seconds"], round_number)
                    results.append(measured)
                    if kind == "page" and not (round_number == settings["rounds"] - 1 and target == order[-1]):
                        restart_wt()
                    log(f"  proxy round {round_number + 1}/{settings['rounds']} {kind:6} {target:7} "
                        f"{rate(measured):8.0f} req/s  p50 {measured['p50_us'] / 1000:.2f} ms  "
                        f"p99 {measured['p99_us'] / 1000:.2f} ms")
    finally:
        for process in reversed(processes):
            stop(process)
    return {"measurements": results, "wt_python": _python_label(python), "witty": WITTY,
            "lb_address": lb_address, "app_address": app_address, "pinned": pinned,
            "rounds": settings["rounds"], "seconds": settings["seconds"]}


def _python_label(python):
    return "Python " + ".".join(map(str, _python_version(str(python))))


def rate(measurement):
    return measurement["requests"] / (measurement["duration_us"] / 1e6)


def summarise(raw):
    """Per kind and target: medians over rounds; ratio haproxy ÷ direct computed within each round."""
    rows = []
    measurements = raw.get("measurements", [])
    for kind in KINDS:
        by_target = {t: [m for m in measurements if m["kind"] == kind and m["target"] == t] for t in TARGETS}
        if not all(by_target.values()):
            continue
        row = {"kind": kind}
        for target, series in by_target.items():
            row[target] = {
                "rps": statistics.median(rate(m) for m in series),
                "p50_ms": statistics.median(m["p50_us"] for m in series) / 1000,
                "p99_ms": statistics.median(m["p99_us"] for m in series) / 1000,
                "requests": sum(m["requests"] for m in series),
                "errors": sum(m["errors"] for m in series),
                "applications_created": sum(m["applications_created"] for m in series),
                "wt_us_per_request": statistics.median(m["wt_cpu_ns"] / max(m["requests"], 1) / 1000 for m in series),
            }
        direct = {m["round"]: m for m in by_target["direct"]}
        pairs = [(m, direct[m["round"]]) for m in by_target["haproxy"] if m["round"] in direct]
        ratios = [rate(h) / rate(d) for h, d in pairs]
        row["rps_ratio"] = (statistics.median(ratios), min(ratios), max(ratios))
        p50 = [h["p50_us"] / d["p50_us"] for h, d in pairs if d["p50_us"]]
        row["p50_ratio"] = statistics.median(p50) if p50 else float("nan")
        lb = [h["lb_cpu_ns"] / h["requests"] / 1000 for h, dummy in pairs if h["requests"]]
        row["lb_us_per_request"] = statistics.median(lb) if lb else float("nan")
        rows.append(row)
    return rows


def markdown(raw):
    """Section 2 of docs/benchmarks.md."""
    lines = ["## 2. Proxy overhead vs the Wt demo app", ""]
    if not raw:
        return lines + ["Not yet measured.", ""]
    if "unavailable" in raw:
        return lines + [f"Not measured on this machine: {raw['unavailable']}.", ""]
    rows = summarise(raw)
    pinning = ("Wt pinned to CPU 0; HAProxy and wrk pinned to CPU 1" if raw["pinned"]
               else "one CPU: no pinning")
    lines += [
        "### How it is measured", "",
        f"- One demo app instance (`roles/wt_app/files/wtstack_demo.py`, Wt from `{raw['witty']}` on "
        f"{raw['wt_python']}) on {raw['app_address']}:{APP_PORT}, with `wt_config.xml` as the role renders it "
        f"(URL session tracking) but a session timeout of {SESSION_TIMEOUT_S} s so that the sessions page loads "
        "open expire during the run.",
        f"- HAProxy on {raw['lb_address']}:{LB_PORT} with `haproxy.cfg` and `wt-sessions.map` rendered from "
        "`roles/haproxy/templates/` for that one instance (health checks on `/health` every 2 s, as the role "
        "does), adapted to run here like benchmark 1's: one thread, no chroot/user/syslog.",
        f"- Load: `wrk -t {CONNECTIONS} -c {CONNECTIONS}` (keep-alive; one connection per thread), the same "
        f"load to the app directly and through HAProxy; {pinning}. {raw['rounds']} round(s) of "
        f"{raw['seconds']} s per request kind and target, interleaved (direct, HAProxy; reversed every other "
        "round); the ratio is computed within a round, then the median is shown with the range in parentheses.",
        "- **page load**: `GET /`; Wt opens a session and answers with its bootstrap page (the application "
        "itself is created by the session's next request). **sticky**: "
        f"`GET /?wtd=<id>&js=no` on {CONNECTIONS} existing sessions (one per connection, opened just before the "
        "measurement): Wt renders the session's plain-HTML page; every one of these requests goes through the "
        "role's map lookup. **static**: a file from the docroot, served by Wt without a session.",
        "- Page loads run last in each round, and Wt is restarted after each page-load run: the thousands of "
        "sessions one run opens slowed Wt down several times over for the next seconds, which biased whichever "
        "measurement came next.",
        "- **apps created** counts Wt applications created during sticky measurements (`/whoami`); it must be 0, "
        "or a request lost its session. **LB CPU/req**: CPU time of the HAProxy process per request.",
        "",
        "| request | target | req/s | p50 ms | p99 ms | requests | errors | apps created | Wt CPU µs/req "
        "| LB CPU µs/req | through ÷ direct req/s | through ÷ direct p50 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        median, low, high = row["rps_ratio"]
        for target in TARGETS:
            data = row[target]
            through = target == "haproxy"
            lines.append(
                f"| {KINDS[row['kind']].split(':')[0] if not through else ''} | "
                f"{'through HAProxy' if through else 'direct'} | {data['rps']:,.0f} | {data['p50_ms']:.2f} | "
                f"{data['p99_ms']:.2f} | {data['requests']:,} | {data['errors']} | "
                f"{data['applications_created'] if row['kind'] == 'sticky' else '–'} | "
                f"{data['wt_us_per_request']:.0f} | "
                + (f"{row['lb_us_per_request']:.1f} | **{median:.2f}** ({low:.2f}–{high:.2f}) | "
                   f"{row['p50_ratio']:.2f} |" if through else "| | |"))
    lines += ["", "### Reading the numbers", ""]
    if rows:
        lb = [row["lb_us_per_request"] for row in rows]
        wt = ", ".join(f"{row['direct']['wt_us_per_request']:.0f} µs per {row['kind']} request" for row in rows)
        lines.append(
            f"- HAProxy spends {min(lb):.0f}–{max(lb):.0f} µs of CPU per request, depending on the kind; Wt spends "
            f"{wt} (direct). Where Wt's CPU is the bottleneck, the proxy's own cost hardly shows in req/s; the "
            "p50 ratio shows the latency of the added hop.")
    lines.append(
        "- wrk and HAProxy share CPU 1 here (Wt has CPU 0), so through HAProxy the client also gets less CPU, "
        "while a direct run leaves CPU 1 to wrk alone; in production HAProxy runs on its own host. Wt CPU/req "
        "is from `/proc/PID/stat` (10 ms ticks), so it is coarse for short runs.")
    if raw["rounds"] < 2:
        lines.append("- One short round (`--quick`): these numbers show the benchmark works, not what it costs.")
    return lines + [""]
