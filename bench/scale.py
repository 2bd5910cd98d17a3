"""Benchmark 4: the topology at fleet scale, in a fresh interpreter so peak memory is its own.

    python bench/scale.py INSTANCES WORKDIR   -> one line of JSON on stdout

Times build_topology (which validates: prefixes unique and prefix-free, ports, addresses,
server names) on generated and on explicit prefixes, Topology.to_dict(), rendering haproxy.cfg
and wt-sessions.map from the role's templates, and `haproxy -c` on the result.
"""

import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet  # noqa: E402
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology  # noqa: E402


def best_of(function, repeat):
    """(fastest wall time in seconds, last result): the fastest run is the least disturbed."""
    best, result = None, None
    for dummy in range(repeat):
        start = time.perf_counter()
        result = function()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def peak_bytes(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def explicit_inventory(instance_count):
    """The same fleet, every instance with a free-form prefix of its own (list form)."""
    groups, hostvars = fleet.inventory(instance_count)
    serial = 0
    for host in groups["wt"]:
        count = hostvars[host].pop("wt_instances")
        base = hostvars[host].pop("wt_base_port")
        instances = []
        for offset in range(count):
            serial += 1
            instances.append({"prefix": f"s{serial:05d}.", "port": base + offset})
        hostvars[host]["wt_instances"] = instances
    return groups, hostvars


def main():
    instance_count = int(sys.argv[1])
    workdir = Path(sys.argv[2])
    repeat = 3
    groups, hostvars = fleet.inventory(instance_count)
    explicit_groups, explicit_hostvars = explicit_inventory(instance_count)

    build_s, topology = best_of(lambda: build_topology(groups, hostvars), repeat)
    explicit_s, dummy = best_of(lambda: build_topology(explicit_groups, explicit_hostvars), repeat)
    to_dict_s, data = best_of(topology.to_dict, repeat)
    build_peak = peak_bytes(lambda: build_topology(groups, hostvars).to_dict())

    map_path = workdir / "scale.map"
    render_s, files = best_of(lambda: fleet.render_role_files(data, map_path, {}), repeat)
    render_peak = peak_bytes(lambda: fleet.render_role_files(data, map_path, {}))
    map_path.write_text(files.map_text)
    config_path = workdir / "scale.cfg"
    config_path.write_text(fleet.adapt(files.config, nbthread=1, stats_socket=workdir / "scale.sock",
                                       server_close=False))
    start = time.perf_counter()
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(config_path)], capture_output=True, text=True, check=False)
    haproxy_check_s = time.perf_counter() - start

    print(json.dumps({
        "instances": len(data["instances"]),
        "app_hosts": len(data["app_hosts"]),
        "build_s": build_s,
        "build_explicit_s": explicit_s,
        "to_dict_s": to_dict_s,
        "build_peak_bytes": build_peak,
        "render_s": render_s,
        "render_peak_bytes": render_peak,
        "config_bytes": len(files.config),
        "map_bytes": len(files.map_text),
        "haproxy_check_s": haproxy_check_s,
        "haproxy_check_ok": check.returncode == 0,
        "haproxy_check_output": (check.stdout + check.stderr)[-2000:],
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "repeat": repeat,
    }))


if __name__ == "__main__":
    main()
