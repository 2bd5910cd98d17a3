"""Ansible cost vs instance count: idempotent site.yml on the lab, 2 instances per app host vs 16.

    .venv/bin/python bench/ansible_cost.py [--rounds 3] [--keep-lab] [--results FILE]

One lab fleet (bench/fleets/ansible_cost.yml) holds both sizes: app1 and app2 run 2 instances each,
app3 and app4 run 16 each, behind lb1. After one converge of the whole fleet, idempotent runs of
site.yml limited to lb1 + app1,app2 ("2 per host") and to lb1 + app3,app4 ("16 per host")
alternate (A B, then B A, ...), so each ratio compares runs taken seconds apart on the same
machine. The load balancer does the same work in both (its configuration routes all 36
instances). Reported per run: wall time, tasks executed (TASK headers) and module invocations
(one per host per task, one per loop item). Needs root (the lab); replaces any running lab and
takes it down at the end unless --keep-lab. Uses the lab's tests/lab/ansible.cfg (pipelining, SSH
ControlPersist, forks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
FLEET = BENCH / "fleets/ansible_cost.yml"
INVENTORY = REPO / ".lab/inventory.yml"
SUBSETS = {"2 per host": "lb1,app1,app2", "16 per host": "lb1,app3,app4"}
GOAL = 1.3
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
RESULT_LINE = re.compile(r"^(?:ok|changed|skipping|failed|fatal): \[([^\]]+)\]", re.M)


def lab(*args):
    subprocess.run([sys.executable, str(REPO / "tests/lab/lab.py"), *args], cwd=REPO, check=True)


def site(*args):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "tests/lab/ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    started = time.monotonic()
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), "site.yml", *args],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"site.yml {' '.join(args)} failed:\n{output[-4000:]}")
    return seconds, output


def measure(subset, limit):
    seconds, output = site("--limit", limit)
    recap = {counts[0]: int(counts[2]) for counts in RECAP.findall(output)}
    if any(recap.values()):
        raise RuntimeError(f"{subset}: not idempotent: changed per host {recap}")
    invocations = {}
    for host in RESULT_LINE.findall(output):
        invocations[host] = invocations.get(host, 0) + 1
    return {"subset": subset, "seconds": seconds, "tasks": output.count("\nTASK ["),
            "invocations": invocations}


def run(rounds, log):
    facts = {"ansible.cfg": [line.strip() for line in (REPO / "tests/lab/ansible.cfg").read_text().splitlines()
                             if re.match(r"\s*(pipelining|ssh_args|forks)\b", line)]}
    log("lab up with bench/fleets/ansible_cost.yml")
    lab("up", "--fleet", str(FLEET))
    log("first converge of the whole fleet (not measured)")
    first, dummy = site()
    log(f"  {first:.0f}s")
    runs = []
    order = list(SUBSETS)
    for round_index in range(rounds):
        for subset in (order if round_index % 2 == 0 else order[::-1]):
            measurement = measure(subset, SUBSETS[subset])
            measurement["round"] = round_index
            runs.append(measurement)
            log(f"  round {round_index + 1}: {subset}: {measurement['seconds']:.1f}s, "
                f"{measurement['tasks']} tasks, invocations {measurement['invocations']}")
    return {"rounds": rounds, "first_converge_s": first, "runs": runs, "facts": facts}


def summarize(result):
    small, large = SUBSETS
    by_round = {}
    for measurement in result["runs"]:
        by_round.setdefault(measurement["round"], {})[measurement["subset"]] = measurement
    ratios = [pair[large]["seconds"] / pair[small]["seconds"] for pair in by_round.values() if len(pair) == 2]
    pick = {subset: [m for m in result["runs"] if m["subset"] == subset] for subset in SUBSETS}
    return {
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "seconds": {subset: statistics.median(m["seconds"] for m in runs) for subset, runs in pick.items()},
        "tasks": {subset: sorted({m["tasks"] for m in runs}) for subset, runs in pick.items()},
        "invocations": {subset: runs[0]["invocations"] for subset, runs in pick.items()},
    }


def markdown(result):
    """Section 3 of docs/benchmarks.md."""
    lines = ["## 3. Ansible cost vs instances per host", ""]
    if not result:
        return lines + ["Not measured in this run (it needs root for the lab: `bench/ansible_cost.py`).", ""]
    summary = summarize(result)
    small, large = SUBSETS
    app = {small: "app1", large: "app3"}
    lines += [
        "Idempotent `site.yml` on the lab (`bench/ansible_cost.py`, fleet `bench/fleets/ansible_cost.yml`): "
        "lb1 with app1, app2 at 2 instances each vs lb1 with app3, app4 at 16 each, in one fleet of 36 "
        "instances, so the load balancer's share is identical. Runs alternate A B / B A over "
        f"{result['rounds']} rounds; every run reported changed=0 on every host. "
        "Settings from `tests/lab/ansible.cfg`: "
        + ", ".join(f"`{fact}`" for fact in result["facts"]["ansible.cfg"]) + ".",
        "",
        "| instances per app host | wall time (median) | tasks executed | module invocations on one app host |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for subset in SUBSETS:
        lines.append(f"| {subset.split()[0]} | {summary['seconds'][subset]:.1f} s | "
                     f"{', '.join(map(str, summary['tasks'][subset]))} | "
                     f"{summary['invocations'][subset].get(app[subset], 0)} |")
    verdict = "met" if summary["ratio"] <= GOAL else "**not met**"
    lines += ["", f"Wall-time ratio 16 ÷ 2 per host: **{summary['ratio']:.2f}** "
              f"({summary['ratio_min']:.2f}–{summary['ratio_max']:.2f} over rounds); goal ≤ {GOAL}: {verdict}. "
              f"Tasks executed: {summary['tasks'][small]} vs {summary['tasks'][large]} "
              "(the task list does not grow with instances).", ""]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--results", type=Path, help="write the measurements here as JSON")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/ansible_cost.py needs root: it boots the lab")
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    try:
        result = run(arguments.rounds, log)
    finally:
        if not arguments.keep_lab:
            lab("down")
    if arguments.results:
        arguments.results.write_text(json.dumps(result, indent=1))
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
