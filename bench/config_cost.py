"""Benchmark 1, second part: what a design costs HAProxy besides CPU per request, per fleet size.

For each design and N, one configuration (as in the routing measurement, plus the server-state file
the role's reload uses) is measured with no traffic: `haproxy -c` time (best of three), the worker's
resident memory after start, and the time of a hitless reload: HAProxy in master-worker mode, the
servers' states saved to the state file first (what the role's unit drop-in does), then `reload` on
the master CLI, timed until the new worker answers on the stats socket.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time

import fleet

RELOADS = 3
CHECKS = 3


def _command(path, line, timeout=60):
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(timeout)
        connection.connect(str(path))
        connection.sendall(line.encode() + b"\n")
        chunks = []
        try:
            while chunk := connection.recv(1 << 16):
                chunks.append(chunk)
        except ConnectionResetError:  # the master re-executes itself on `reload` and drops its CLI
            pass
    return b"".join(chunks).decode()


def _answers(path, line):
    try:
        return _command(path, line, timeout=5)
    except OSError:  # not there yet: the master is re-executing itself, the worker still starting
        return None


def _worker_pid(stats_socket):
    try:
        for line in _command(stats_socket, "show info", timeout=5).splitlines():
            if line.startswith("Pid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _new_worker_pid(stats_socket, old):
    pid = _worker_pid(stats_socket)
    return pid if pid and pid != old else None


def _wait(condition, what, process, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            raise RuntimeError(f"HAProxy exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout} s")
        time.sleep(0.005)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def measure_one(design, size, workdir, balancer, lb_address, start, stop):
    tag = f"cost-{design}-{size}"
    state_file = workdir / f"{tag}.state"
    state_file.write_text("1\n")
    config = fleet.config(design, size, workdir, server_close=False, lb_address=lb_address, tag=tag,
                          state_file=state_file)
    stats_socket = config.with_suffix(".sock")
    master_socket = workdir / f"{tag}.master"

    checks = []
    for dummy in range(CHECKS):
        started = time.perf_counter()
        result = subprocess.run([*balancer, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        checks.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"haproxy -c failed on {config}:\n{result.stdout}{result.stderr}")

    process = start([*balancer, "-W", "-db", "-S", str(master_socket), "-f", str(config)],
                    config.with_suffix(".master.log"))
    try:
        started = time.perf_counter()
        pid = _wait(lambda: _worker_pid(stats_socket), "worker", process)
        start_s = time.perf_counter() - started
        rss = rss_kib(pid)
        reloads = []
        for dummy in range(RELOADS):
            state_file.write_text(_command(stats_socket, "show servers state"))
            # The master CLI keeps a connection open after answering, unless told to quit.
            _wait(lambda: _answers(master_socket, "show proc; quit"), "master CLI", process)
            started = time.perf_counter()
            _command(master_socket, "reload; quit")
            pid = _wait(lambda old=pid: _new_worker_pid(stats_socket, old), "new worker", process)
            reloads.append(time.perf_counter() - started)
    finally:
        stop(process)
    return {"design": design, "size": size, "check_s": min(checks), "start_s": start_s, "rss_kib": rss,
            "reload_s": statistics.median(reloads), "reload_min_s": min(reloads), "reload_max_s": max(reloads),
            "config_bytes": config.stat().st_size}


def measure(designs, sizes, workdir, balancer, log, start, stop):
    """`start(argv, log_path)` and `stop(process)` are the benchmark's own (bench/run.py): every
    process it starts is stopped by pid."""
    lb_address = f"{fleet.LB_NETWORK}200"
    results = []
    for size in sizes:
        for design in designs:
            result = measure_one(design, size, workdir, balancer, lb_address, start, stop)
            log(f"  config cost {design:9} N={size:<5} haproxy -c {result['check_s']:.2f} s, "
                f"RSS {result['rss_kib'] / 1024:.0f} MiB, reload {result['reload_s']:.2f} s")
            results.append(result)
    return results


def markdown(results, designs, sizes):
    if not results:
        return []
    by_key = {(r["design"], r["size"]): r for r in results}
    lines = ["### Memory, `haproxy -c` and reload time",
             "",
             "No traffic: per configuration, `haproxy -c` (best of 3), the worker's resident memory after start, "
             f"and a hitless reload in master-worker mode (median of {RELOADS}: server states saved to the state "
             "file first, as the role's reload does, then `reload` on the master CLI, until the new worker answers "
             "its stats socket). Per instance: the difference to N = 2, divided by the instances added.",
             "",
             "| design | N | config KiB | `haproxy -c` s | RSS MiB | RSS KiB per instance | reload s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    smallest = min(sizes)
    for design in designs:
        for size in sizes:
            row = by_key.get((design, size))
            if not row:
                continue
            base = by_key.get((design, smallest))
            per_instance = ((row["rss_kib"] - base["rss_kib"]) / (size - smallest)
                            if base and size > smallest else None)
            lines.append(f"| {design} | {size} | {row['config_bytes'] / 1024:,.0f} | {row['check_s']:.2f} "
                         f"| {row['rss_kib'] / 1024:.0f} | {'–' if per_instance is None else f'{per_instance:.1f}'} "
                         f"| {row['reload_s']:.2f} ({row['reload_min_s']:.2f}–{row['reload_max_s']:.2f}) |")
    lines.append("")
    return lines
