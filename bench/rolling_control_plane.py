"""Rolling control plane: what a roll costs the controller against the number of hosts in its play.

    .venv/bin/python bench/rolling_control_plane.py [--fleet tests/e2e/fleet-rolling.yml] [--sizes 8,32,100]
        [--rounds 1] [--phantom-network 127.0.41.0/24] [--checkout DIR] [--results FILE] [--keep-lab]

On the lab (root): the rolling fleet (two balancers, 8 app hosts of 3 Wt instances) is booted and
converged unless it already runs, then its balancers are converged with an inventory of 1,000
instances on 100 app hosts, 92 of them phantoms that do not exist (tests/lab/phantom_inventory.py):
HAProxy carries every instance and sees the phantoms' down. Then, for every inventory size (8 app
hosts: the lab's alone; 32 and 100: with the first 24 and 92 phantoms), with no load:

- a check-mode roll (topology, journal and servers read, plan; no batch): the roll's fixed cost;
- the roll of the lab's 24 instances at 25 % (rolling_restart_servers: a canary, then 4 batches).

Each run records wall time and the controller's CPU (ansible-playbook and what it waited for).
Per batch = (roll - check-mode roll) / batches; the slope is a least-squares line of it against the
play's hosts. --checkout runs another tree's playbooks (e.g. `git archive main | tar -x -C DIR`)
against the same lab, to compare designs. Run `tests/lab/lab.py down` afterwards unless --keep-lab.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
INVENTORY = REPO / ".lab/inventory.yml"
sys.path.insert(0, str(REPO / "tests/lab"))

import phantom_inventory  # noqa: E402

SUMMARY_BATCHES = re.compile(r"batches\s+(\d+) \(max unavailable")
DURATION = re.compile(r"duration\s+\S+ \(([0-9.]+) s\)")
STEPS = re.compile(r"^\s*- '\s+(\d+c?)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s", re.M)


def log(message):
    print(message, flush=True)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def playbook(checkout, inventory, playbook_path, *args):
    """(wall s, controller CPU s, output) of one ansible-playbook run from `checkout`."""
    # The lab's settings (its inventory's keys, no host key prompts) live with the lab; an older checkout
    # kept them in its root ansible.cfg.
    config = checkout / "tests/lab/ansible.cfg"
    env = {**os.environ, "ANSIBLE_CONFIG": str(config if config.exists() else checkout / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1"}
    before, started = children_cpu(), time.monotonic()
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), playbook_path, *args],
                            cwd=checkout, env=env, capture_output=True, text=True, check=False)
    seconds, cpu = time.monotonic() - started, children_cpu() - before
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"{playbook_path} {' '.join(args)} failed:\n{output[-5000:]}")
    return seconds, cpu, output


def inventories(workdir, sizes, network):
    """{app hosts: inventory path}: the lab's alone, then with phantoms, all from one 100-host document."""
    document = phantom_inventory.phantom_inventory(yaml.safe_load(INVENTORY.read_text()), max(sizes), 1000, network)
    paths = {}
    for size in sizes:
        hosts = document["all"]["children"]["wt"]["hosts"]
        kept = dict(list(hosts.items())[:size])
        sized = {"all": {"children": dict(document["all"]["children"], wt=dict(
            document["all"]["children"]["wt"], hosts=kept))}}
        paths[size] = workdir / f"inventory-{size}.yml"
        paths[size].write_text(yaml.safe_dump(sized, sort_keys=False))
    return paths


def roll_args(real_servers):
    return ["-e", "rolling_restart_drain_timeout=2", "-e", "rolling_restart_quiet=1",
            "-e", "rolling_max_unavailable=25%", "-e", json.dumps({"rolling_restart_servers": real_servers})]


def measure(checkout, paths, real_servers, rounds):
    runs = []
    for round_ in range(rounds):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for size in order:
            fixed = playbook(checkout, paths[size], "playbooks/rolling_restart.yml", "--check",
                             *roll_args(real_servers))
            roll = playbook(checkout, paths[size], "playbooks/rolling_restart.yml", *roll_args(real_servers))
            batches = int(SUMMARY_BATCHES.search(roll[2]).group(1))
            steps = [row[1:] for row in STEPS.findall(roll[2].split("Rolling ")[-1])]
            run = {"hosts": size, "round": round_, "check_seconds": fixed[0], "check_cpu_s": fixed[1],
                   "seconds": roll[0], "cpu_s": roll[1], "batches": batches,
                   "roll_seconds": float(DURATION.search(roll[2]).group(1)),
                   "per_batch_cpu_s": (roll[1] - fixed[1]) / batches, "steps": steps}
            runs.append(run)
            log(f"  {size:>3} play hosts: check mode {fixed[0]:.1f} s wall, {fixed[1]:.1f} s CPU; roll {roll[0]:.1f} s "
                f"wall, {roll[1]:.1f} s CPU, {batches} batches -> {run['per_batch_cpu_s']:.2f} s CPU per batch; "
                f"steps (instances, seconds, out, restart, back): {steps}")
    return runs


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    xs, ys = [x for x, y in points], [y for x, y in points]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)


def report(runs):
    sizes = sorted({run["hosts"] for run in runs})
    for size in sizes:
        mine = [run for run in runs if run["hosts"] == size]
        best = min(mine, key=lambda run: run["cpu_s"])
        log(f"{size:>3} play hosts: roll {min(r['seconds'] for r in mine):.1f} s wall, {best['cpu_s']:.1f} s CPU, "
            f"fixed (check mode) {min(r['check_cpu_s'] for r in mine):.1f} s CPU, "
            f"per batch {min(r['per_batch_cpu_s'] for r in mine):.2f} s CPU")
    points = [(run["hosts"], run["per_batch_cpu_s"]) for run in runs]
    per_host = slope(points) if len(sizes) > 1 else 0.0
    log(f"slope of controller CPU per batch against play hosts: {per_host * 1000:.1f} ms per host "
        f"({per_host * 92:.2f} s per batch from 8 to 100 hosts)")
    return per_host


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--fleet", type=Path, default=REPO / "tests/e2e/fleet-rolling.yml")
    parser.add_argument("--sizes", default="8,32,100")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--phantom-network", default="127.0.41.0/24")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the tree whose playbooks run")
    parser.add_argument("--results", type=Path)
    parser.add_argument("--keep-lab", action="store_true")
    parser.add_argument("--skip-setup", action="store_true", help="the lab runs, converged, balancers at 1,000")
    arguments = parser.parse_args(argv)
    sizes = [int(size) for size in arguments.sizes.split(",")]
    lab = [str(BIN / "python"), str(REPO / "tests/lab/lab.py")]
    try:
        with tempfile.TemporaryDirectory(prefix="wtstack-roll-bench-") as workdir:
            if not arguments.skip_setup:
                subprocess.run([*lab, "up", "--fleet", str(arguments.fleet)], cwd=REPO, check=True)
                log("site.yml on the rolling fleet")
                playbook(REPO, INVENTORY, "site.yml", "-e", "wt_app_version=1.0")
            paths = inventories(Path(workdir), sizes, arguments.phantom_network)
            if not arguments.skip_setup:
                log("balancers converged with 1,000 instances on 100 app hosts (92 phantoms)")
                playbook(REPO, paths[max(sizes)] if max(sizes) == 100 else paths[max(sizes)], "site.yml",
                         "--limit", "haproxy")
            lab_inventory = yaml.safe_load(INVENTORY.read_text())
            real = list(lab_inventory["all"]["children"]["wt"]["hosts"])
            real_servers = [f"{host}-{port}" for host in real for port in (9090, 9091, 9092)]
            log(f"rolls of {len(real_servers)} instances at 25 % from {arguments.checkout}")
            runs = measure(arguments.checkout.resolve(), paths, real_servers, arguments.rounds)
            per_host = report(runs)
            if arguments.results:
                arguments.results.write_text(json.dumps({"runs": runs, "slope_s_per_host": per_host,
                                                         "checkout": str(arguments.checkout)}, indent=1))
    finally:
        if not arguments.keep_lab:
            subprocess.run([*lab, "down"], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
