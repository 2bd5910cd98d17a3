"""Routing benchmark: what session-affinity routing costs HAProxy as the fleet grows, for our
design (a backend per instance, found by a map), the previous one (one backend, use-server by
map) and the 2010 seed's (a backend and two ACLs per instance).

    .venv/bin/python bench/run.py            # full run (the Ansible part boots the lab: root): docs/benchmarks.md, .png
    .venv/bin/python bench/run.py --quick    # smoke run, about 20 seconds, small fleets
    .venv/bin/python bench/run.py --haproxy-suite trixie --sections routing   # the routing part with HAProxy 3.0

Everything listens on 127.0.0.0/8. Each HAProxy under test runs with one thread pinned to CPU 0;
the responders (HAProxy answering on every instance's port, naming the instance) and wrk run
on CPU 1. All configurations of a scenario run side by side and are measured in interleaved
rounds, so a ratio compares measurements taken seconds apart. Every process started here is
stopped here, by pid.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ansible_cost  # noqa: E402
import config_cost  # noqa: E402
import fleet  # noqa: E402
import fleet_scale  # noqa: E402
import haproxy_release  # noqa: E402
import proxy_overhead  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TRAFFIC = BENCH / "traffic.lua"

FULL = {"sizes": [2, 100, 1000, 5000], "rounds": 3, "seconds": 3, "warmup_seconds": 1, "scale_instances": 10000,
        "designs": ["ours", "baseline", "seed"], "profile": True}
QUICK = {"sizes": [2, 10], "rounds": 1, "seconds": 1, "warmup_seconds": 0, "scale_instances": 1000,
         "designs": ["ours", "baseline", "seed"], "profile": False}
SECTIONS = ("routing", "proxy", "ansible", "scale", "fleet")
PROFILE_SCENARIO = "server-close"
CONNECTIONS = 8
NEW_SESSION_PERCENT = 10
SESSION_REQUESTS = 100 // NEW_SESSION_PERCENT
# Capacity at N ÷ capacity at N = 2, server-close scenario (docs/design.md, "Measuring routing cost fairly").
GOALS = {1000: 0.95, 5000: 0.90}
GOAL_SCENARIO = "server-close"
# The HAProxy under test (not the responders'): --haproxy replaces it, e.g. with another release
# run from a root filesystem that sees the work directory at the same path.
BALANCER = ["haproxy"]
ANSIBLE_ROUNDS = 2

# Backend connection behaviour must be the same for both designs within a scenario, or the
# ratio measures connection reuse instead of routing (docs/design.md, "Measuring routing cost fairly").
SCENARIOS = {
    "server-close": {
        "title": "Backend connections held equal (option http-server-close in both designs)",
        "server_close": True,
        "traffic": "mix",
        "description": (
            "`option http-server-close` added to both configurations, so every request opens and closes its "
            f"own backend connection whatever the routing. Each request independently: {NEW_SESSION_PERCENT} % new "
            "sessions (no `wtd`), the rest `/?wtd=<prefix of a random instance><16 random [A-Za-z0-9]>`."),
    },
    "clients": {
        "title": "Real clients (one session per client connection, keep-alive as configured)",
        "server_close": False,
        "traffic": "clients",
        "description": (
            "Both configurations as they are (HAProxy's default keep-alive and connection reuse). Each client "
            "connection behaves like a browser: one request without `wtd` opens a session, the response tells "
            f"which instance holds it, then {SESSION_REQUESTS - 1} requests carry that session's id; then the next "
            f"session ({NEW_SESSION_PERCENT} % of requests open a session)."),
    },
}
DESIGNS = {
    "ours": "ours: a backend per instance, found by map (the role)",
    "baseline": "baseline: one backend, use-server by map (before)",
    "seed": "seed (2010): backend + url_sub ACL per instance",
}

_processes = []


def start(command, log_path, cpu=None):
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    # Ends with this process even if it is killed outright (a test's timeout), when atexit cannot run.
    if shutil.which("setpriv"):
        command = ["setpriv", "--pdeathsig", "TERM", *command]
    log = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    _processes.append(process)
    return process


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process in _processes:
        _processes.remove(process)


def stop_all():
    for process in list(_processes):
        stop(process)


def wait_for_port(address, port, process, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log_path.name}: HAProxy exited:\n{log_path.read_text()[-3000:]}")
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout} s; see {log_path}")


def assert_free(address, port):
    try:
        socket.create_connection((address, port), timeout=1).close()
    except OSError:
        return
    raise RuntimeError(f"something already listens on {address}:{port}; is another benchmark running?")


def free_slot():
    """A /24 pair in 127.0.0.0/8 that no other run is using (see fleet.use_slot)."""
    for slot in random.Random().sample(range(1, 255), 254):
        fleet.use_slot(slot)
        probes = [(fleet.APP_NETWORK + "1", fleet.BASE_PORT), (fleet.LB_NETWORK + "1", fleet.LB_PORT),
                  (fleet.LB_NETWORK + "101", fleet.LB_PORT)]
        if not any(proxy_overhead.listening(address, port) for address, port in probes):
            return slot
    raise RuntimeError("no free 127.77.x.0/24 + 127.78.x.0/24 pair for the benchmark")


def backend_connections(stats_socket):
    """Backend connections the load balancer has opened so far (`connect` of `show stat`, summed over
    its backends); read between measurements, outside the CPU-time window."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(30)
        connection.connect(str(stats_socket))
        connection.sendall(b"show stat -1 2 -1\n")
        chunks = []
        while chunk := connection.recv(1 << 16):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    column = header.index("connect")
    return sum(int(line.split(",")[column] or 0) for line in lines[1:] if line)


def cpu_ns(pid):
    """CPU time the (single-threaded) process has used, in nanoseconds."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def get(address, path):
    connection = http.client.HTTPConnection(address, fleet.LB_PORT, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("x-served-by")
    finally:
        connection.close()


def suffix(rng):
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for dummy in range(16))


def check_routing(address, instances, rng, samples=50):
    """Requests one at a time through a load balancer: new sessions are spread round robin, a
    session id reaches the instance whose prefix starts it, an unknown id is served anyway."""
    instance_of = {f"{i['connect_address']}:{i['port']}": i["prefix"] for i in instances}
    new = [get(address, "/") for dummy in range(min(len(instances), 20))]
    targets = [instances[0], instances[-1], *rng.sample(instances, min(samples, len(instances)))]
    sticky = [(i["prefix"], get(address, f"/?wtd={i['prefix']}{suffix(rng)}")) for i in targets]
    unknown = get(address, f"/?wtd=zz-unknown-{suffix(rng)}")
    return {
        "new_requests": len(new),
        "new_ok": sum(response[0] == 200 for response in new),
        "new_distinct_instances": len({response[1] for response in new}),
        "sticky_requests": len(sticky),
        "sticky_ok": sum(response[0] == 200 for dummy, response in sticky),
        "sticky_correct": sum(instance_of.get(served) == prefix for prefix, (dummy, served) in sticky),
        "unknown_session_status": unknown[0],
    }


def run_wrk(address, table, traffic, seconds, seed):
    command = ["wrk", "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "-s", str(TRAFFIC),
               f"http://{address}:{fleet.LB_PORT}/", "--", traffic, str(table), str(NEW_SESSION_PERCENT),
               str(SESSION_REQUESTS), str(seed)]
    if shutil.which("taskset") and os.cpu_count() > 1:
        command = ["taskset", "-c", "1", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^RESULT (\{.*\})$", result.stdout, re.M)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return json.loads(match.group(1))


def measure_scenario(name, scenario, settings, workdir, rng, log, profiles):
    """Start every configuration of the scenario, check its routing, then measure in rounds."""
    server_close = scenario["server_close"]
    balancers = []
    address_index = 1 if server_close else 101
    for size in settings["sizes"]:
        for design in settings["designs"]:
            address = f"{fleet.LB_NETWORK}{address_index}"
            address_index += 1
            config = fleet.config(design, size, workdir, server_close=server_close, lb_address=address,
                                  renderer=settings["renderer"])
            balancers.append({"design": design, "size": size, "address": address, "config": config})

    results = []
    try:
        for balancer in balancers:
            assert_free(balancer["address"], fleet.LB_PORT)
            log_path = balancer["config"].with_suffix(".log")
            balancer["process"] = start([*BALANCER, "-db", "-f", str(balancer["config"])], log_path,
                                        cpu=0 if os.cpu_count() > 1 else None)
            balancer["log"] = log_path
        for balancer in balancers:
            wait_for_port(balancer["address"], fleet.LB_PORT, balancer["process"], balancer["log"])
            instances = fleet.topology(balancer["size"])["instances"]
            balancer["routing_check"] = check_routing(balancer["address"], instances, rng)
            table = workdir / f"table-{balancer['size']}.txt"
            if not table.exists():
                table.write_text("\n".join(fleet.served_by_table(balancer["size"])) + "\n")
            balancer["table"] = table
            if settings["warmup_seconds"]:
                run_wrk(balancer["address"], table, scenario["traffic"], settings["warmup_seconds"], 0)

        for round_number in range(settings["rounds"]):
            # Reverse every other round so slow drift in the machine's load favours no one.
            order = balancers if round_number % 2 == 0 else list(reversed(balancers))
            for balancer in order:
                pid = balancer["process"].pid
                stats_socket = balancer["config"].with_suffix(".sock")
                connections_before = backend_connections(stats_socket)
                before = cpu_ns(pid)
                measured = run_wrk(balancer["address"], balancer["table"], scenario["traffic"],
                                   settings["seconds"], seed=round_number + 1)
                measured["lb_cpu_ns"] = cpu_ns(pid) - before
                measured["backend_connections"] = backend_connections(stats_socket) - connections_before
                measured.update(scenario=name, design=balancer["design"], size=balancer["size"],
                                round=round_number)
                results.append(measured)
                log(f"  {name:12} round {round_number + 1}/{settings['rounds']} {balancer['design']:9} "
                    f"N={balancer['size']:<5} {measured['requests'] / (measured['duration_us'] / 1e6):9.0f} req/s "
                    f"{measured['lb_cpu_ns'] / max(measured['requests'], 1) / 1000:6.1f} us LB CPU/req")

        if settings["profile"] and name == PROFILE_SCENARIO and shutil.which("perf"):
            largest = max(settings["sizes"])
            for balancer in balancers:
                if balancer["size"] == largest:
                    log(f"  profiling {balancer['design']} N={largest} (extra run, not in the statistics)")
                    profiles[balancer["design"]] = profile(balancer, scenario, settings, workdir)
    finally:
        for balancer in balancers:
            if "process" in balancer:
                stop(balancer["process"])
    checks = [{"scenario": name, "design": b["design"], "size": b["size"], **b.get("routing_check", {})}
              for b in balancers]
    return results, checks


def profile(balancer, scenario, settings, workdir):
    """Where the HAProxy under test spends its CPU: perf's hottest symbols during one wrk run."""
    data = workdir / f"perf-{balancer['design']}-{balancer['size']}.data"
    recorder = subprocess.Popen(["perf", "record", "-q", "-o", str(data), "-p", str(balancer["process"].pid),
                                 "--", "sleep", str(settings["seconds"])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_wrk(balancer["address"], balancer["table"], scenario["traffic"], settings["seconds"], seed=99)
    finally:
        recorder.wait(timeout=60)
    # A HAProxy run in a chroot maps its binary by its path there: symbols come from that tree.
    symfs = ["--symfs", BALANCER[1]] if BALANCER[0] == "chroot" else []
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,sym",
                             *symfs], capture_output=True, text=True, timeout=120, check=False)
    hottest = []
    for line in report.stdout.splitlines():
        match = re.match(r"^\s+([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(\S+)", line)
        if match:
            hottest.append({"percent": float(match.group(1)), "dso": match.group(2), "symbol": match.group(3)})
    return hottest[:15]


def rate(measurement):
    return measurement["requests"] / (measurement["duration_us"] / 1e6)


def capacity(measurement):
    """Requests per second of LB CPU: what one fully busy HAProxy thread would serve."""
    return measurement["requests"] / (measurement["lb_cpu_ns"] / 1e9) if measurement["lb_cpu_ns"] else float("nan")


def summarise(results, scenarios, sizes, designs):
    """Medians per point, and ratios computed within each round, then their median and range."""
    by_key = {}
    for measurement in results:
        by_key.setdefault((measurement["scenario"], measurement["design"], measurement["size"]), []).append(measurement)
    rounds = {}
    for measurement in results:
        rounds.setdefault((measurement["scenario"], measurement["round"]), {})[
            (measurement["design"], measurement["size"])] = measurement

    def ratio_stats(scenario, numerator, denominator, metric):
        values = []
        for (name, dummy), points in rounds.items():
            if name == scenario and numerator in points and denominator in points:
                bottom = metric(points[denominator])
                if bottom:
                    values.append(metric(points[numerator]) / bottom)
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}

    summary = []
    for scenario in scenarios:
        for design in designs:
            for size in sizes:
                points = by_key.get((scenario, design, size))
                if not points:
                    continue
                row = {
                    "scenario": scenario, "design": design, "size": size, "rounds": len(points),
                    "rps": statistics.median(rate(p) for p in points),
                    "rps_min": min(rate(p) for p in points), "rps_max": max(rate(p) for p in points),
                    "p50_ms": statistics.median(p["p50_us"] for p in points) / 1000,
                    "p99_ms": statistics.median(p["p99_us"] for p in points) / 1000,
                    "lb_us_per_request": statistics.median(p["lb_cpu_ns"] / max(p["requests"], 1) / 1000
                                                           for p in points),
                    "capacity": statistics.median(capacity(p) for p in points),
                    "lb_busy": statistics.median(p["lb_cpu_ns"] / 1000 / p["duration_us"] for p in points),
                    "connections_per_request": (sum(p["backend_connections"] for p in points)
                                                / max(sum(p["requests"] for p in points), 1)),
                    "requests": sum(p["requests"] for p in points),
                    "errors": sum(p[k] for p in points for k in p if k.startswith("errors_")),
                    "sticky_checked": sum(p["sticky"] for p in points),
                    "misrouted": sum(p["misrouted"] + p["unknown"] + p["no_header"] for p in points),
                    "new_sessions": sum(p["new_sessions"] for p in points),
                }
                for metric_name, metric in (("rps", rate), ("capacity", capacity)):
                    row[f"{metric_name}_vs_n2"] = ratio_stats(scenario, (design, size), (design, sizes[0]), metric)
                    row[f"{metric_name}_vs_seed"] = (None if design == "seed" else
                                                     ratio_stats(scenario, (design, size), ("seed", size), metric))
                summary.append(row)
    return summary


def machine_facts():
    def first_line(command):
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            return "unknown"
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "haproxy": first_line([*BALANCER, "-v"]),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0].strip(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def run_scale(instances, workdir):
    result = subprocess.run([sys.executable, str(BENCH / "scale.py"), str(instances), str(workdir)],
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"scale.py failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_renderers(size, workdir):
    """Our configuration rendered with jinja2 directly must equal what plan.yml renders."""
    jinja_dir, plan_dir = workdir / "render-jinja2", workdir / "render-plan"
    jinja_dir.mkdir()
    plan_dir.mkdir()
    jinja_config = fleet.ours(size, jinja_dir, server_close=False, lb_address=fleet.LB_NETWORK + "250")[0]
    plan_config = fleet.ours(size, plan_dir, server_close=False, lb_address=fleet.LB_NETWORK + "250",
                             renderer="plan")[0]
    same_config = (jinja_config.read_text().replace(str(jinja_dir), "DIR")
                   == plan_config.read_text().replace(str(plan_dir), "DIR"))
    same_map = (jinja_config.with_suffix(".map").read_text() == plan_config.with_suffix(".map").read_text())
    return {"instances": size, "identical_config": same_config, "identical_map": same_map}


def plot(summary, sizes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:,.0f}")

    scenarios = [s for s in SCENARIOS if any(row["scenario"] == s for row in summary)]
    figure, axes = plt.subplots(2, len(scenarios), figsize=(6 * len(scenarios), 8), squeeze=False)
    styles = {"ours": ("tab:blue", "o"), "baseline": ("tab:gray", "s"), "seed": ("tab:red", "^")}
    for column, scenario in enumerate(scenarios):
        for row_index, (metric, label) in enumerate((("rps", "requests/s (wrk, 8 connections)"),
                                                     ("capacity", "requests per LB CPU-second"))):
            axis = axes[row_index][column]
            for design, (color, marker) in styles.items():
                rows = sorted((r for r in summary if r["scenario"] == scenario and r["design"] == design),
                              key=lambda r: r["size"])
                if rows:
                    axis.plot([r["size"] for r in rows], [r[metric] for r in rows], color=color, marker=marker,
                              label=DESIGNS[design])
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xticks(sizes)
            axis.set_xticklabels([str(s) for s in sizes])
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(plain)
            axis.yaxis.set_minor_formatter(NullFormatter())
            axis.set_xlabel("Wt instances (N)")
            axis.set_ylabel(label)
            axis.grid(True, which="both", alpha=0.3)
            if row_index == 0:
                axis.set_title(scenario, fontsize=11)
            axis.legend(fontsize=8)
    figure.suptitle("HAProxy session-affinity routing cost vs fleet size (nbthread 1)", fontsize=12)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def ratio_text(stats):
    if not stats:
        return "–"
    if stats["n"] == 1:
        return f"{stats['median']:.2f}"
    return f"{stats['median']:.2f} ({stats['min']:.2f}–{stats['max']:.2f})"


def render_markdown(report, page="benchmarks"):
    facts, settings, summary = report["machine"], report["settings"], report["summary"]
    sizes = settings["sizes"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`"
        + (" **in quick (smoke) mode: small fleets, one short round; not for conclusions**"
           if settings["quick"] else "")
        + f" on {report['date']}. Every run rewrites this page; do not edit it by hand.",
        "Run it with `make bench` (or `.venv/bin/python bench/run.py`; `--quick` for a smoke run)"
        + (f"; this page: `bench/run.py {settings['command']}`." if settings.get("command") else "."),
        "",
        "## Machine",
        "",
        f"- HAProxy: {facts['haproxy']}",
        f"- CPU: {facts['cpu']}, nproc = {facts['nproc']}; kernel {facts['kernel']}",
        f"- Load generator: {facts['wrk']}, Python {facts['python']}",
        f"- Load average at start / end: {' '.join(facts['loadavg'])} / {' '.join(report['loadavg_end'])}"
        " (other jobs shared the machine; see \"Reading the numbers\")",
        "",
        "## 1. Routing cost vs fleet size",
        "",
        "### How it is measured",
        "",
        f"- Fleets of N = {', '.join(map(str, sizes))} Wt instances: app hosts of up to {fleet.INSTANCES_PER_HOST} "
        "instances, host *h* on 127.78.*s*.*h*, consecutive ports from 20000, generated prefixes "
        "(`app1-20000-`, ...), built by the collection's `build_topology`.",
        f"- **ours**: `haproxy.cfg` and `wt-sessions.map` rendered from `roles/haproxy/templates/` "
        f"{settings.get('renderer_used', '')}, then adapted to run here: bind on loopback, one thread, "
        "no chroot/user/syslog/server-state file, admin socket in the work directory. One backend per instance "
        "(its health checked server, `use-server`, a relay backup back into backend `wt`), found with "
        "`use_backend %[var(txn.instance_backend)]` after one `map_beg` lookup of `wtd`'s prefix; backend `wt` "
        "holds a placement server per instance (`track`), round robin, for new sessions.",
        "- **baseline**: the previous design, rendered the same way from `bench/baseline/` (the role's templates "
        "before this change): one backend `wt` with every instance, "
        "`use-server %[urlp(wtd),map_beg(MAP)] if { urlp(wtd),map_beg(MAP) -m found }`.",
        "- **seed**: the 2010 blog's configuration for the same instances and prefixes (backend per instance, "
        "`acl srvK url_sub wtd=<prefix>`, `acl srvK_up nbsrv(bckK) gt 0`, `use_backend bckK if srvK_up srvK`, "
        "`default_backend bck_lb` of `track` servers), modernised only to parse (timeout keywords, an address "
        "on each tracking server), without syslog like ours.",
        f"- Health checks are configured in every design (the seed's `track` needs them) with "
        f"`inter {fleet.CHECK_INTERVAL}`, so no check traffic falls into a measurement (at the role's 2 s, 5,000 "
        "servers would add 2,500 checks/s in any design: a cost of fleet size, not of routing).",
        f"- Instances: HAProxy *responders* (one process per {fleet.INSTANCES_PER_RESPONDER} instances) listening on "
        "all N address:port pairs, answering 200 at once with `x-served-by: <address:port>` and closing idle "
        "keep-alive connections after 2 s; fast, so that HAProxy's routing, not the backend, is measured.",
        f"- Load: `wrk -t {CONNECTIONS} -c {CONNECTIONS}` with `bench/traffic.lua` (one connection per wrk thread, "
        "so every response is matched to its request and **every sticky response is checked** against the "
        "session's instance). HAProxy under test: `nbthread 1`, pinned to CPU 0; responders and wrk pinned to CPU 1.",
        f"- All {len(settings['designs']) * len(sizes)} configurations of a scenario run at once; "
        f"{settings['rounds']} rounds "
        f"of {settings['seconds']} s per configuration, interleaved (A B C A B C ..., reversed every other round). "
        "Ratios are computed within a round, then the median is shown with the range over rounds in parentheses.",
        "- **req/s** is what wrk got through; **LB CPU/req** is the CPU time the HAProxy under test used "
        "(`/proc/PID/schedstat`) divided by the requests it served, and **capacity** = 1 / that: requests per "
        "second one fully busy HAProxy thread would serve. Capacity is the routing cost itself; req/s also "
        "depends on the load generator and on the other jobs on the machine. **backend conns/req**: connections "
        "the HAProxy under test opened to instances per request served (`connect` in `show stat`).",
        "",
    ]
    for scenario, spec in SCENARIOS.items():
        rows = [r for r in summary if r["scenario"] == scenario]
        if not rows:
            continue
        lines += [
            f"### {spec['title']}",
            "",
            spec["description"],
            "",
            "| design | N | req/s | p50 ms | p99 ms | LB CPU µs/req | capacity req/s | LB busy | backend conns/req | "
            "req/s ÷ N=2 | capacity ÷ N=2 | req/s ÷ seed | capacity ÷ seed |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows:
            lines.append(
                f"| {row['design']} | {row['size']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
                f"| {row['lb_us_per_request']:.1f} | {row['capacity']:,.0f} | {row['lb_busy']:.0%} "
                f"| {row['connections_per_request']:.2f} "
                f"| {ratio_text(row['rps_vs_n2'])} | {ratio_text(row['capacity_vs_n2'])} "
                f"| {ratio_text(row['rps_vs_seed'])} | {ratio_text(row['capacity_vs_seed'])} |")
        lines.append("")

    goals = " and ".join(f"ours({size}) ÷ ours(2) ≥ {goal}" for size, goal in GOALS.items())
    lines += [f"### Goal: {goals}, {GOAL_SCENARIO} scenario", "",
              "Judged on capacity (HAProxy CPU per request), the routing cost itself; the req/s ratio is shown "
              "for reference only, since wrk and the machine, not HAProxy, bounded req/s (see \"LB busy\"). "
              "Both scenarios are listed; the goal applies to the one where backend connections are held equal.",
              ""]
    goal_rows = [r for r in summary if r["size"] in GOALS and r["design"] != "seed"]
    if not goal_rows:
        lines += ["Not measured in this run (neither N = 1000 nor N = 5000 is among the sizes).", ""]
    else:
        lines += ["| scenario | design | N | capacity ÷ N=2 | goal | req/s ÷ N=2 |",
                  "| --- | --- | ---: | ---: | --- | ---: |"]
    for row in goal_rows:
        stats = row["capacity_vs_n2"]
        goal = GOALS[row["size"]]
        if row["scenario"] == GOAL_SCENARIO and row["design"] == "ours":
            verdict = f"≥ {goal}: " + ("met" if stats and stats["median"] >= goal else "**not met**")
        else:
            verdict = "(reference)"
        lines.append(f"| {row['scenario']} | {row['design']} | {row['size']} | {ratio_text(stats)} | {verdict} "
                     f"| {ratio_text(row['rps_vs_n2'])} |")
    lines.append("")
    lines += config_cost.markdown(report.get("config_cost"), settings["designs"], sizes)

    lines += ["### Routing correctness", "",
              "Before measuring, each configuration got requests one at a time: consecutive new sessions "
              "(expected: each on a different instance, round robin), sticky requests for the first, the last "
              "and random instances (expected: exactly that instance), and an unknown session id (expected: 200 "
              "from some instance). During the measurement wrk checked every sticky response.", "",
              "| scenario | design | N | new: 200 / distinct / sent | sticky: right instance / sent | unknown id | "
              "wrk: sticky checked | wrk: misrouted | wrk: errors |",
              "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    rows_by_key = {(r["scenario"], r["design"], r["size"]): r for r in summary}
    for check in report["routing_checks"]:
        row = rows_by_key.get((check["scenario"], check["design"], check["size"]), {})
        lines.append(
            f"| {check['scenario']} | {check['design']} | {check['size']} | {check['new_ok']} / "
            f"{check['new_distinct_instances']} / {check['new_requests']} | {check['sticky_correct']} / "
            f"{check['sticky_requests']} | {check['unknown_session_status']} | {row.get('sticky_checked', 0):,} "
            f"| {row.get('misrouted', 0)} | {row.get('errors', 0)} |")
    lines.append("")
    if report.get("renderer_check"):
        check = report["renderer_check"]
        lines += [f"Renderer check: for N = {check['instances']}, jinja2 rendering is identical to "
                  f"`playbooks/plan.yml`'s: haproxy.cfg {'yes' if check['identical_config'] else 'NO'}, "
                  f"map {'yes' if check['identical_map'] else 'NO'}.", ""]

    if report.get("profiles"):
        lines += [f"### Where the CPU goes at N = {max(sizes)} ({PROFILE_SCENARIO} scenario, `perf record` "
                  "on the HAProxy under test during one extra run)", "",
                  "| design | hottest symbols (share of HAProxy's CPU samples) |", "| --- | --- |"]
        for design, hottest in report["profiles"].items():
            shown = ", ".join(f"`{h['symbol']}` {h['percent']:.1f} %" for h in hottest[:6])
            lines.append(f"| {design} | {shown or 'no samples'} |")
        lines.append("")

    lines += ["### Plot", "", f"![req/s and capacity vs N]({page}.png)", "",
              "Log-log. Top: requests/s wrk achieved; bottom: requests per CPU-second of the HAProxy under test.", ""]

    lines += ["### Reading the numbers", "", *report["notes"], ""]

    lines += proxy_overhead.markdown(report.get("proxy_overhead"))
    lines += ansible_cost.markdown(report.get("ansible_cost"))
    lines += scale_markdown(report.get("scale"))
    lines += fleet_scale.markdown(report.get("fleet_scale"))
    return "\n".join(lines)


def scale_markdown(scale):
    if not scale:
        return []
    return [
        f"## 4. Topology at scale ({scale['instances']:,} instances)",
        "",
        f"A generated inventory of {scale['app_hosts']} app hosts × {scale['instances'] // scale['app_hosts']} "
        "instances, measured in a fresh interpreter (`bench/scale.py`); times are the best of "
        f"{scale['repeat']}, peak memory from `tracemalloc`.",
        "",
        "| step | time | peak Python memory |",
        "| --- | ---: | ---: |",
        f"| `build_topology` (validates; generated prefixes) | {scale['build_s'] * 1000:.0f} ms "
        f"| {scale['build_peak_bytes'] / 2**20:.1f} MiB (with `to_dict`) |",
        f"| `build_topology` (explicit prefixes, list form) | {scale['build_explicit_s'] * 1000:.0f} ms | |",
        f"| `Topology.to_dict()` | {scale['to_dict_s'] * 1000:.0f} ms | |",
        f"| render `haproxy.cfg` + `wt-sessions.map` (jinja2, role templates) | {scale['render_s'] * 1000:.0f} ms "
        f"| {scale['render_peak_bytes'] / 2**20:.1f} MiB |",
        f"| `haproxy -c` on the result ({scale['config_bytes'] / 1024:.0f} KiB config, "
        f"{scale['map_bytes'] / 1024:.0f} KiB map) | {scale['haproxy_check_s'] * 1000:.0f} ms "
        f"| ({'valid' if scale['haproxy_check_ok'] else 'INVALID'}) |",
        "",
        f"Process peak RSS: {scale['max_rss_bytes'] / 2**20:.0f} MiB. Goal `build_topology` < 1 s: "
        f"{'met' if scale['build_s'] < 1 else 'NOT met'} ({scale['build_s']:.2f} s).",
        "",
    ]


def share(hottest, *symbols):
    return sum(h["percent"] for h in hottest if any(h["symbol"].startswith(symbol) for symbol in symbols))


def notes(summary, facts, profiles):
    result = []
    smallest = min((r["size"] for r in summary), default=None)
    busy = [r["lb_busy"] for r in summary if r["size"] == smallest]
    if busy and max(busy) < 0.9:
        result.append(
            f"- At N = {smallest} the HAProxy under test was only {min(busy):.0%}–{max(busy):.0%} busy (LB busy): "
            f"with {facts['nproc']} CPUs shared by wrk, the responders and other jobs, req/s there is bounded by "
            "the load generator and the machine, not by HAProxy, so a req/s ratio against N = 2 understates the "
            "routing cost (and scatters with the machine's load). Compare designs and sizes by **capacity** "
            "(HAProxy CPU per request), which does not depend on who the bottleneck was.")
    result.append(
        "- The seed's cost grows with N because HAProxy evaluates its `use_backend` rules in order: a request "
        "for the k-th instance runs k `nbsrv` and k `url_sub` scans of the URL.")
    hottest = profiles.get("baseline") or []
    found = ""
    if hottest:
        found = (f" (here: `findserver` + `strcmp` {share(hottest, 'findserver', '__strcmp', 'strcmp'):.0f} % "
                 "of HAProxy's CPU at the largest N)")
    result.append(
        "- The baseline does one map lookup whatever N (a prefix tree for `map_beg`), but HAProxy 2.6 to 3.2 "
        "resolve the server name that `use-server %[...]` produces by walking the backend's whole server list "
        "(`findserver()` in src/proxy.c: a `strcmp` per server, and it never stops early because it also looks "
        f"for duplicates){found}. HAProxy 3.3 replaced that walk with a tree lookup.")
    ours = profiles.get("ours") or []
    tree = ""
    if ours:
        shown = ", ".join(f"`{h['symbol']}` {h['percent']:.1f} %" for h in ours[:4])
        tree = (f" At the largest N its hottest symbols are {shown}; `findserver` is "
                f"{share(ours, 'findserver'):.1f} % and `ebmb_lookup`/`ebis_lookup` (the map's prefix tree and "
                f"the backend-name tree) {share(ours, 'ebmb_lookup', 'ebis_lookup', 'ebst_lookup'):.1f} %.")
    result.append(
        "- Ours looks the backend up by the name the map gives (`use_backend %[var(...)]`): HAProxy finds a "
        "backend by name in a tree, and the backend's one `use-server` rule names its server statically "
        f"(resolved when the configuration is loaded), so no step walks a list that grows with the fleet.{tree}")
    result.append(
        "- In the server-close scenario every design opens one backend connection per request (backend conns/req "
        "= 1.00), so what differs between N is routing. In the clients scenario a connection is reused within a "
        "session, and at small N a new session also often finds an idle connection to its instance left by an "
        f"earlier one; at large N almost every session opens one (up to 1/{SESSION_REQUESTS} per request). That "
        "part of the clients-scenario slope is a real cost of a big fleet, but not of routing. The two scenarios "
        "are never mixed in a ratio.")
    result.append(
        "- Connection reuse, clients scenario. Ours sets `http-reuse safe` and sends WebSocket upgrades to a "
        "server of their own in each instance's backend (`ws`: same address, `track`s the instance's server, "
        "`pool-max-conn 0`), so page requests share idle connections to their instance (backend conns/req "
        "above) and an upgrade always opens a connection of its own. Both halves are needed: Wt 4.13 takes an "
        "upgrade only as the first request of a server connection, and since HAProxy commit ecb40b2c3 "
        "(\"always satisfy the first req reuse rule with l7 retries\", 2.7; Debian's 2.6.12 behaves the same) "
        "`safe` lets even a client's first request take an idle connection when `retry-on` covers "
        "`conn-failure`, `empty-response` and `response-timeout`, as the role's does. On the lab, 20 upgrades "
        "each right after three page requests of their session: with "
        "`safe` and no lane 0 of 20 worked on HAProxy 2.6.12 and 0 of 20 on 3.0; without `response-timeout` "
        "20 of 20 on both (the mechanism); with the lane, 20 of 20 on both. The previous release of the role "
        "used `http-reuse never` instead, one backend connection per client connection, which opened one "
        "for almost every request once sessions spread over many instances.")
    result.append(
        "- Ours also does per-request work the seed does not (`option forwardfor`, `X-Forwarded-Proto`), which "
        "is in ours ÷ seed at every N.")
    return result


def write_report(report, arguments):
    """Summary, notes, page and plot from the raw measurements (so --render-only applies changes here)."""
    settings = report["settings"]
    report["summary"] = summarise(report["measurements"], report["scenarios"], settings["sizes"], settings["designs"])
    report["notes"] = notes(report["summary"], report["machine"], report["profiles"])
    arguments.docs.mkdir(parents=True, exist_ok=True)
    page = getattr(arguments, "page", "benchmarks")
    if not arguments.no_plot and report["summary"]:
        plot(report["summary"], settings["sizes"], arguments.docs / f"{page}.png")
    (arguments.docs / f"{page}.md").write_text(render_markdown(report, page))
    if arguments.results and not arguments.render_only:
        arguments.results.write_text(json.dumps(report, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 2 and 10, one 1-second round")
    parser.add_argument("--docs", type=Path, default=REPO / "docs",
                        help="where benchmarks.md and benchmarks.png go (default: docs/)")
    parser.add_argument("--results", type=Path, help="also write all raw measurements here as JSON")
    parser.add_argument("--workdir", type=Path, help="keep configurations and logs here (default: a temp dir)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="override N, e.g. 2,1000")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=int, help="seconds per measurement")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--renderer", choices=("jinja2", "plan"), default="jinja2",
                        help="render our config with jinja2 directly (default) or with playbooks/plan.yml")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--haproxy", type=shlex.split, metavar="COMMAND",
                        help="command of the HAProxy under test (default: haproxy on PATH), e.g. "
                             "'chroot /srv/trixie /usr/sbin/haproxy'; it must see --workdir at the same path")
    parser.add_argument("--haproxy-suite", choices=("trixie", "bookworm"),
                        help="the HAProxy under test is the one this Debian suite ships, run in a chroot of the "
                             "lab's image (root); trixie: HAProxy 3.0")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated, of: " + ", ".join(SECTIONS) + " (default: all)")
    parser.add_argument("--page", default="benchmarks",
                        help="name of the page and plot in --docs, without suffix (default: benchmarks)")
    parser.add_argument("--ansible-cost", choices=("auto", "yes", "no"), default="auto",
                        help="section 3 on the lab (needs root; replaces a running lab): auto = when root, "
                             "not with --quick")
    parser.add_argument("--render-only", type=Path, metavar="RESULTS",
                        help="measure nothing: rewrite the page and plot from a --results file of an earlier run")
    arguments = parser.parse_args()
    if arguments.render_only:
        report = json.loads(arguments.render_only.read_text())
        write_report(report, arguments)
        return

    sections = [s for s in arguments.sections.split(",") if s]
    if set(sections) - set(SECTIONS):
        parser.error(f"unknown section {', '.join(sorted(set(sections) - set(SECTIONS)))}")
    if arguments.haproxy and arguments.haproxy_suite:
        parser.error("give --haproxy or --haproxy-suite, not both")
    if arguments.haproxy:
        BALANCER[:] = arguments.haproxy
    settings = dict(QUICK if arguments.quick else FULL)
    for name in ("sizes", "rounds", "seconds"):
        if getattr(arguments, name):
            settings[name] = getattr(arguments, name)
    settings["sizes"] = sorted(settings["sizes"])
    settings.update(quick=arguments.quick, renderer=arguments.renderer, sections=sections,
                    command=" ".join(shlex.quote(argument) for argument in sys.argv[1:]),
                    renderer_used=("with `ansible-playbook playbooks/plan.yml`" if arguments.renderer == "plan" else
                                   "with Jinja2 directly from the topology `build_topology` returns"))
    scenarios = [s for s in arguments.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}")
    for tool in ("haproxy", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"bench/run.py needs {tool} on PATH (apt-get install {tool})")

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="wtstack-bench."))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    with contextlib.ExitStack() as cleanup:
        if arguments.haproxy_suite:
            log(f"HAProxy under test: Debian {arguments.haproxy_suite}'s, in a chroot of the lab's image")
            BALANCER[:] = cleanup.enter_context(haproxy_release.chroot_haproxy(arguments.haproxy_suite, workdir))
        report = measure_all(settings, sections, scenarios, arguments, workdir, log)
    report["elapsed_s"] = time.monotonic() - started
    write_report(report, arguments)
    log(f"wrote {arguments.docs / (arguments.page + '.md')}")
    for row in report["summary"]:
        log(f"{row['scenario']:12} {row['design']:9} N={row['size']:<5} {row['rps']:8,.0f} req/s  "
            f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  {row['lb_us_per_request']:.1f} us/req  "
            f"rps/N2 {ratio_text(row['rps_vs_n2'])}  cap/N2 {ratio_text(row['capacity_vs_n2'])}  "
            f"rps/seed {ratio_text(row['rps_vs_seed'])}  cap/seed {ratio_text(row['capacity_vs_seed'])}")
    if not arguments.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def measure_all(settings, sections, scenarios, arguments, workdir, log):
    facts = machine_facts()
    log(f"{facts['haproxy']}; nproc {facts['nproc']}; work directory {workdir}")
    ansible = None
    if "ansible" in sections and (arguments.ansible_cost == "yes" or (
            arguments.ansible_cost == "auto" and not arguments.quick and os.geteuid() == 0)):
        # First, so that the lab is down again before anything below is timed.
        log("Ansible cost: idempotent site.yml on the lab, 2 vs 16 instances per app host")
        try:
            ansible = ansible_cost.run(ANSIBLE_ROUNDS, log)
        finally:
            ansible_cost.lab("down")
    hosts_scale = None
    if "fleet" in sections and not arguments.quick:
        # Also before anything below is timed; its site.yml parts need root (the lab), its plan part not.
        log("fleet scale: site.yml and plan.yml against the number of hosts (bench/fleet_scale.py)")
        try:
            hosts_scale = fleet_scale.run(dict(fleet_scale.DEFAULTS), log)
        finally:
            if os.geteuid() == 0:
                ansible_cost.lab("down")
    rng = random.Random(2010)
    fleet.use_slot(free_slot())
    log(f"load balancers on {fleet.LB_NETWORK}0/24, instances on {fleet.APP_NETWORK}0/24")
    # If the renderer cannot work, fail before anything starts.
    fleet.ours(settings["sizes"][0], workdir, server_close=False, lb_address=fleet.LB_NETWORK + "250",
               renderer=settings["renderer"])

    results, checks, profiles, costs = [], [], {}, []
    if "routing" in sections:
        responder_processes = []
        try:
            for config, first, last in fleet.responders(max(settings["sizes"]), workdir):
                assert_free(first["connect_address"], first["port"])
                log_path = config.with_suffix(".log")
                process = start(["haproxy", "-db", "-f", str(config)], log_path,
                                cpu=1 if os.cpu_count() > 1 else None)
                responder_processes.append(process)
                for instance in (first, last):
                    wait_for_port(instance["connect_address"], instance["port"], process, log_path)
            for name in scenarios:
                log(f"scenario {name}")
                scenario_results, scenario_checks = measure_scenario(name, SCENARIOS[name], settings, workdir, rng,
                                                                     log, profiles)
                results += scenario_results
                checks += scenario_checks
        finally:
            for process in responder_processes:
                stop(process)
        log("memory, haproxy -c and reload time per design and N")
        costs = config_cost.measure(settings["designs"], settings["sizes"], workdir, BALANCER, log, start, stop)

    proxy = None
    if "proxy" in sections:
        log("proxy overhead: the Wt demo app directly vs through HAProxy")
        proxy = proxy_overhead.measure(settings, workdir, log, start, stop)

    scale = renderer_check = None
    if "scale" in sections:
        log(f"topology at scale: {settings['scale_instances']} instances")
        scale = run_scale(settings["scale_instances"], workdir)
    if "routing" in sections and not arguments.quick:
        log("renderer check: jinja2 vs plan.yml, N=100")
        try:
            renderer_check = check_renderers(100, workdir)
        except Exception as error:  # the benchmark stands without it; say so in the report
            log(f"renderer check failed: {error}")

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "loadavg_end": open("/proc/loadavg").read().split()[:3],
        "settings": settings,
        "scenarios": scenarios,
        "routing_checks": checks,
        "scale": scale,
        "proxy_overhead": proxy,
        "ansible_cost": ansible,
        "fleet_scale": hosts_scale,
        "profiles": profiles,
        "renderer_check": renderer_check,
        "config_cost": costs,
        "measurements": results,
    }


if __name__ == "__main__":
    main()
