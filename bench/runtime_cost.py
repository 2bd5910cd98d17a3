"""What one call of the runtime modules costs at 5,000 instances against 10 (issue 21).

    .venv/bin/python bench/runtime_cost.py                 # 10 and 5,000 instances, side by side
    .venv/bin/python bench/runtime_cost.py --sizes 10 1000 --rounds 9

Two HAProxy processes run at once, each with the haproxy role's configuration for its fleet
(rendered from roles/haproxy/templates by bench/fleet.py, the way the routing benchmark does it).
In both, the same ten instances are up (small responders answer their health checks); the others
of the large fleet listen nowhere. The calls, in rounds that alternate between the two sizes:

- a drain: haproxy_server with ``servers:`` (the ten) and ``state: drain`` (then ``ready`` again,
  not timed);
- a read: haproxy_info with ``backend: wt`` and ``servers:`` (the ten).

Each is timed two ways: the module's main() in this process (what the module itself does on the
balancer: its reads, its commands, HAProxy's answers), and the module run as Ansible runs it on
a host, a new Python process importing the module and its module_utils (what one task costs the
balancer, less SSH). The medians, and their ratios large/small, are printed side by side.
Everything listens on 127.0.0.0/8; every process started here is stopped here, by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "collections"))

import fleet  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402 - ansible-core >= 2.19, as .venv has
from ansible_collections.wtstack.fleet.plugins.modules import haproxy_info, haproxy_server  # noqa: E402

MODULES = REPO / "plugins" / "modules"
LAB_PY = REPO / "tests" / "integration" / "local_haproxy.py"
SLOT = 41  # 127.77.41.0/24 and 127.78.41.0/24: apart from the routing benchmark's slots
ASKED = 10  # the servers each call is about


def _load_lab():
    import importlib.util

    spec = importlib.util.spec_from_file_location("haproxy_lab", LAB_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process(module, args):
    """Seconds of module.main() with ``args``; fails on a failed result."""
    output = io.StringIO()
    start = time.perf_counter()
    with patch_module_args(args), contextlib.redirect_stdout(output):
        try:
            module.main()
        except SystemExit:
            pass
    seconds = time.perf_counter() - start
    result = json.loads(output.getvalue())
    if result.get("failed"):
        raise RuntimeError(f"{module.__name__} failed: {result.get('msg')}")
    return seconds


def as_process(name, args, workdir):
    """Seconds of the module run in a new Python process, its arguments in a file (as AnsiballZ
    hands them over)."""
    args_file = workdir / f"{name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(REPO / "collections"))
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(MODULES / f"{name}.py"), str(args_file)], capture_output=True,
                         text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    result = json.loads(run.stdout)
    if result.get("failed"):
        raise RuntimeError(f"{name} failed: {result.get('msg')}")
    return seconds


class Balancer:
    """HAProxy with the role's configuration for ``size`` instances (the first ASKED are up)."""

    def __init__(self, size, number, workdir, lab):
        self.size = size
        self.config, dummy = fleet.ours(size, workdir, server_close=False, tag=f"runtime-{size}",
                                        lb_address=f"{fleet.LB_NETWORK}{number}")
        self.socket, self.lab = str(workdir / f"runtime-{size}.sock"), lab
        self.names = [instance["server_name"] for instance in fleet.topology(size)["instances"][:ASKED]]
        self.log = open(workdir / f"runtime-{size}.log", "w")
        self.process = subprocess.Popen(lab.die_with_parent(["haproxy", "-db", "-f", str(self.config)]),
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def command(self, line):
        return self.lab.runtime_command(self.socket, line, timeout=30)

    def wait_up(self, timeout=120):
        """Until the asked-about servers are UP at full health (their first checks passed)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = [line.split(",") for line in self.command(
                    "; ".join(f"show stat wt.{name} 4 -1" for name in self.names)).splitlines()]
                statuses = {row[1]: row[17] for row in rows if len(row) > 17 and row[0].startswith("wt.")
                            and row[1] in self.names}
                if len(statuses) == ASKED and set(statuses.values()) == {"UP"}:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy with {self.size} instances: its servers did not come up")
            time.sleep(0.2)

    def stop(self):
        self.lab.stop_process(self.process, timeout=10)
        self.log.close()


def measure(sizes=(10, 5000), rounds=7, workdir=None, log=print):
    """{"sizes", "rounds", "seconds": {call: {size: [seconds]}}, "median", "ratio"}."""
    fleet.use_slot(SLOT)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="runtime-cost-"))
    lab = _load_lab()
    balancers = {}
    # Every fleet of bench/fleet.py begins with the same instances: one responder each serves all sizes.
    responders = [lab.Backend(instance["connect_address"], instance["port"])
                  for instance in fleet.topology(min(sizes))["instances"][:ASKED]]
    try:
        for number, size in enumerate(sizes, 1):
            balancers[size] = Balancer(size, number, workdir, lab)
        for balancer in balancers.values():
            balancer.wait_up()
        return _rounds(balancers, sizes, rounds, workdir, log)
    finally:
        for balancer in balancers.values():
            balancer.stop()
        for responder in responders:
            responder.shutdown()
            responder.server_close()


def _calls(balancer):
    common = {"socket": balancer.socket, "backend": "wt", "servers": balancer.names}
    return {
        "drain": (haproxy_server, "haproxy_server", dict(common, state="drain"), dict(common, state="ready")),
        "info": (haproxy_info, "haproxy_info", common, None),
    }


def _rounds(balancers, sizes, rounds, workdir, log):
    seconds = {f"{call} {way}": {size: [] for size in sizes}
               for call in ("drain", "info") for way in ("in-process", "process")}
    for number in range(rounds):
        for size in sizes if number % 2 == 0 else reversed(sizes):
            for call, (module, name, args, undo) in _calls(balancers[size]).items():
                seconds[f"{call} in-process"][size].append(in_process(module, args))
                if undo:
                    in_process(module, undo)
                seconds[f"{call} process"][size].append(as_process(name, args, workdir))
                if undo:
                    in_process(module, undo)
        log(f"round {number + 1}/{rounds} done")
    median = {key: {size: statistics.median(values) for size, values in by_size.items()}
              for key, by_size in seconds.items()}
    small, large = min(sizes), max(sizes)
    ratio = {key: by_size[large] / by_size[small] for key, by_size in median.items()}
    return {"sizes": list(sizes), "rounds": rounds, "seconds": seconds, "median": median, "ratio": ratio}


def table(result):
    small, large = min(result["sizes"]), max(result["sizes"])
    lines = [f"{'call (10 servers asked about)':34} {f'{small} instances':>14} {f'{large} instances':>16} {'ratio':>7}"]
    for key, by_size in result["median"].items():
        lines.append(f"{key:34} {by_size[small] * 1000:11.1f} ms {by_size[large] * 1000:13.1f} ms "
                     f"{result['ratio'][key]:7.2f}")
    lines.append(f"medians of {result['rounds']} rounds alternating between the sizes")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10, 5000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the measurements to this file")
    args = parser.parse_args()
    result = measure(tuple(args.sizes), args.rounds, log=lambda text: print(text, file=sys.stderr))
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
