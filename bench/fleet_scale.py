"""Fleet scale: what site.yml and plan.yml cost as the fleet grows.

    .venv/bin/python bench/fleet_scale.py [--sections site,cold,instances,plan] [--hosts 2,8,16,24]
        [--cold-hosts 2,8,16,24] [--rounds 2] [--network 127.0.10.0/24] [--results FILE] [--keep-lab]

On the lab (root), with the scale fleet (tests/lab/scale_fleet.py: lb1 on Debian 13, lb2 on Debian 12,
app hosts of 2 Wt instances each):
- cold: site.yml on freshly booted hosts, for each number of app hosts (the lab is rebuilt each time);
- instances: cold site.yml on 4 app hosts of 2 instances vs 4 of 16 (per-host cost vs instances);
- site: idempotent site.yml limited to lb1, lb2 and the first N app hosts of one converged lab,
  sizes alternating A B C D / D C B A over the rounds, so each ratio compares runs minutes apart.
Every run records wall time, the controller's CPU (ansible-playbook and everything it waited for),
the hosts' CPU (the lab containers' cgroups, app hosts and load balancers apart), the load average
(other jobs share the machine) and, from -vvv, the SSH executions per app host (one per module run).
- plan: playbooks/plan.yml on generated inventories of 100, 1,000 and 10,000 instances (20 per app
  host), load balancer only and all hosts, beside the 0.1.0 way (one template task per file:
  tests/integration/plan_by_template_tasks.yml) where that takes minutes, not hours. No root needed.
Raw runs go to --results; markdown() renders the section of docs/benchmarks.md from them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
LAB_DIR = REPO / "tests/lab"
INVENTORY = REPO / ".lab/inventory.yml"
sys.path.insert(0, str(LAB_DIR))

import lab  # noqa: E402
import scale_fleet  # noqa: E402

SECTIONS = ("cold", "instances", "site", "plan")
GOAL_IDEMPOTENT = 2.0  # idempotent site.yml on 16 app hosts <= 2 x on 2
GOAL_INSTANCES = 1.3  # cold run, 16 instances per host <= 1.3 x 2 per host
GOAL_PLAN_S = 60  # plan.yml, 1,000 instances on 50 hosts
PLAN_INSTANCES_PER_HOST = 20
# What `make bench` measures (bench/run.py); the command line overrides each.
DEFAULTS = {"sections": list(SECTIONS), "hosts": [2, 8, 16, 24], "cold_hosts": [2, 8, 16, 24], "rounds": 2,
            "plan_sizes": [100, 1000, 10000], "network": scale_fleet.DEFAULT_NETWORK,
            # the 0.1.0 way (a template task per file) beside plan.yml only where it takes minutes
            "reference_all_hosts_max": 100, "reference_lb_max": 10000}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
SSH_EXEC = re.compile(r"^<([^>]+)> SSH: EXEC ", re.M)
RESULT = re.compile(r"^(ok|changed|skipping): \[([^\]\s]+)", re.M)


def ansible_env():
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "tests/lab/ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0"}


def cgroup_cpu_seconds():
    """CPU seconds each lab host has used so far (its cgroup's cpu.stat)."""
    usage = {}
    cgroup = lab.lab_cgroup()
    if cgroup.is_dir():
        for host in cgroup.iterdir():
            stat_file = host / "cpu.stat"
            if stat_file.is_file():
                usage[host.name] = int(stat_file.read_text().split()[1]) / 1e6
    return usage


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def playbook(playbook_path, inventory, *args, cwd=REPO):
    """Run a playbook; (seconds, controller CPU seconds, output). Fails on a failed run."""
    before = children_cpu_seconds()
    started = time.monotonic()
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *args],
                            cwd=cwd, env=ansible_env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{playbook_path} {' '.join(args)} failed:\n{output[-4000:]}")
    return seconds, children_cpu_seconds() - before, output


def lab_command(*args):
    subprocess.run([sys.executable, str(LAB_DIR / "lab.py"), *args], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def boot(workdir, app_hosts, instances, network, fresh):
    """The scale fleet on the lab: freshly booted hosts (fresh) or the running ones kept (lab.py up)."""
    fleet_file = workdir / f"fleet-{app_hosts}x{instances}.yml"
    fleet_file.write_text(scale_fleet.render(app_hosts, instances, network, str(fleet_file)))
    if fresh:
        lab_command("down")
    started = time.monotonic()
    lab_command("up", "--fleet", str(fleet_file))
    return time.monotonic() - started


def addresses():
    """{address: host} of the lab's inventory."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    found = {}
    for group in inventory["all"]["children"].values():
        for host, variables in (group.get("hosts") or {}).items():
            if variables and "ansible_host" in variables:
                found[variables["ansible_host"]] = host
    return found


def site_run(label, limit=None, verbose=False, idempotent=False):
    """One site.yml run with everything it cost, per host where it can be told apart."""
    args = ["--limit", limit] if limit else []
    if verbose:
        args.append("-vvv")
    load = os.getloadavg()[0]
    hosts_before = cgroup_cpu_seconds()
    seconds, controller, output = playbook(REPO / "site.yml", INVENTORY, *args)
    hosts_after = cgroup_cpu_seconds()
    recap = {counts[0]: {"ok": int(counts[1]), "changed": int(counts[2])} for counts in RECAP.findall(output)}
    if idempotent and any(counts["changed"] for counts in recap.values()):
        raise RuntimeError(f"{label}: not idempotent: {recap}")
    host_cpu = {host: hosts_after.get(host, 0) - hosts_before.get(host, 0) for host in recap}
    results = {}
    for dummy, host in RESULT.findall(output):
        results[host] = results.get(host, 0) + 1
    run = {"label": label, "seconds": seconds, "controller_cpu_s": controller, "loadavg_before": load,
           "app_hosts": sorted(host for host in recap if host.startswith("app")),
           "app_cpu_s": sum(cpu for host, cpu in host_cpu.items() if host.startswith("app")),
           "lb_cpu_s": sum(cpu for host, cpu in host_cpu.items() if host.startswith("lb")),
           "task_results": results, "changed": {host: counts["changed"] for host, counts in recap.items()}}
    if verbose:
        by_address = addresses()
        executions = {}
        for address in SSH_EXEC.findall(output):
            host = by_address.get(address, address)
            executions[host] = executions.get(host, 0) + 1
        run["ssh_executions"] = executions
    return run


def measure_cold(settings, workdir, log):
    runs = []
    for app_hosts in settings["cold_hosts"]:
        boot_s = boot(workdir, app_hosts, 2, settings["network"], fresh=True)
        run = site_run(f"cold, {app_hosts} app hosts x 2", verbose=True)
        run.update(size=app_hosts, instances_per_host=2, boot_s=boot_s)
        runs.append(run)
        log(f"  cold {app_hosts:>2} app hosts: {run['seconds']:.0f} s, controller {run['controller_cpu_s']:.0f} s "
            f"CPU, app hosts {run['app_cpu_s']:.0f} s, load {run['loadavg_before']:.1f}")
    return runs


def measure_instances(settings, workdir, log):
    runs = []
    for instances in (2, 16):
        boot(workdir, 4, instances, settings["network"], fresh=True)
        run = site_run(f"cold, 4 app hosts x {instances}", verbose=True)
        run.update(size=4, instances_per_host=instances)
        runs.append(run)
        log(f"  cold 4 app hosts x {instances:>2} instances: {run['seconds']:.0f} s, app hosts "
            f"{run['app_cpu_s']:.0f} s CPU")
    return runs


def measure_site(settings, workdir, log):
    largest = max(settings["hosts"])
    boot(workdir, largest, 2, settings["network"], fresh=False)
    log(f"  converge {largest} app hosts (not measured)")
    site_run("converge")
    runs = []
    sizes = sorted(settings["hosts"])
    for round_index in range(settings["rounds"]):
        for size in (sizes if round_index % 2 == 0 else sizes[::-1]):
            limit = ",".join(["lb1", "lb2"] + [f"app{n}" for n in range(1, size + 1)])
            run = site_run(f"idempotent, {size} app hosts", limit=limit, idempotent=True)
            run.update(size=size, round=round_index)
            runs.append(run)
            log(f"  round {round_index + 1}: idempotent {size:>2} app hosts: {run['seconds']:.1f} s, controller "
                f"{run['controller_cpu_s']:.1f} s, app hosts {run['app_cpu_s']:.1f} s CPU, load "
                f"{run['loadavg_before']:.1f}")
    # SSH executions per host, from one more run of the largest size with -vvv (not in the statistics).
    counted = site_run(f"idempotent, {largest} app hosts, -vvv", verbose=True, idempotent=True)
    return runs, counted


def plan_inventory(path, instances, balancers=1):
    apps = {}
    for number in range(-(-instances // PLAN_INSTANCES_PER_HOST)):
        count = min(PLAN_INSTANCES_PER_HOST, instances - number * PLAN_INSTANCES_PER_HOST)
        apps[f"app{number + 1:03d}"] = {"ansible_host": f"10.{20 + number // 250}.{number % 250}.1",
                                        "wt_instances": count}
    lbs = {f"lb{n}": {"ansible_host": f"198.51.100.{10 + n}"} for n in range(1, balancers + 1)}
    path.write_text(yaml.safe_dump({"all": {"children": {"haproxy": {"hosts": lbs}, "wt": {"hosts": apps}}}}))
    return path, len(apps)


def measure_plan(settings, workdir, log):
    runs = []
    reference = REPO / "tests/integration/plan_by_template_tasks.yml"
    for instances in settings["plan_sizes"]:
        inventory, app_hosts = plan_inventory(workdir / f"plan-{instances}.yml", instances)
        cases = [("plan.yml", "lb1"), ("plan.yml", None)]
        # The 0.1.0 way beside it, where it takes minutes (about 0.3 s per file and host here).
        if instances <= settings["reference_all_hosts_max"]:
            cases.append(("template tasks", None))
        if instances <= settings["reference_lb_max"]:
            cases.append(("template tasks", "lb1"))
        for how, limit in cases:
            target = workdir / f"plan-out-{instances}-{how.split()[0]}-{limit or 'all'}"
            shutil.rmtree(target, ignore_errors=True)
            args = ["-e", f"plan_dir={target}"] + (["--limit", limit] if limit else [])
            if how == "plan.yml":
                path = REPO / "playbooks/plan.yml"
            else:
                path = reference
                args += ["-e", f"roles_dir={REPO / 'roles'}"]
            load = os.getloadavg()[0]
            seconds, controller, dummy = playbook(path, inventory, *args)
            files = sum(1 for item in target.rglob("*") if item.is_file())
            runs.append({"instances": instances, "app_hosts": app_hosts, "how": how, "scope": limit or "all hosts",
                         "seconds": seconds, "controller_cpu_s": controller, "files": files, "loadavg_before": load})
            log(f"  plan {instances:>6} instances, {limit or 'all hosts':>9}, {how:>14}: {seconds:6.1f} s "
                f"({controller:.1f} s CPU, {files} files, load {load:.1f})")
            shutil.rmtree(target, ignore_errors=True)
    return runs


def facts():
    config = [line.strip() for line in (REPO / "tests/lab/ansible.cfg").read_text().splitlines()
              if re.match(r"\s*(pipelining|ssh_args|forks|strategy)\b", line)]
    return {"ansible.cfg": config, "nproc": os.cpu_count()}


def run(settings, log):
    result = {"settings": settings, "facts": facts(), "loadavg_start": os.getloadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="wtstack-fleet-scale."))
    try:
        if "plan" in settings["sections"]:
            log("fleet scale: plan.yml at " + ", ".join(map(str, settings["plan_sizes"])) + " instances")
            result["plan"] = measure_plan(settings, workdir, log)
        needs_lab = [section for section in ("cold", "instances", "site") if section in settings["sections"]]
        if needs_lab and os.geteuid() != 0:
            log("fleet scale: the site.yml sections need root (the lab); skipped")
            needs_lab = []
        if "instances" in needs_lab:
            log("fleet scale: cold site.yml, 4 app hosts of 2 vs 16 instances")
            result["instances"] = measure_instances(settings, workdir, log)
        if "cold" in needs_lab:
            log("fleet scale: cold site.yml vs app hosts: " + ", ".join(map(str, settings["cold_hosts"])))
            result["cold"] = measure_cold(settings, workdir, log)
        if "site" in needs_lab:
            log("fleet scale: idempotent site.yml vs app hosts: " + ", ".join(map(str, settings["hosts"])))
            result["site"], result["site_counted"] = measure_site(settings, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    return result


# ------------------------------------------------------------------------------------------ report

def per_app_host(run, key="ssh_executions"):
    """Median over the app hosts of a per-host count."""
    values = [run.get(key, {}).get(host, 0) for host in run["app_hosts"]]
    return statistics.median(values) if values else 0


def idempotent_summary(runs):
    """Per size: medians; and each size's ratio to the smallest, taken within each round."""
    sizes = sorted({run["size"] for run in runs})
    by_round = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["size"]] = run
    rows = []
    for size in sizes:
        mine = [run for run in runs if run["size"] == size]
        ratios = [pair[size]["seconds"] / pair[sizes[0]]["seconds"] for pair in by_round.values()
                  if size in pair and sizes[0] in pair]
        rows.append({
            "size": size,
            "seconds": statistics.median(run["seconds"] for run in mine),
            "controller_cpu_s": statistics.median(run["controller_cpu_s"] for run in mine),
            "app_cpu_s": statistics.median(run["app_cpu_s"] for run in mine),
            "lb_cpu_s": statistics.median(run["lb_cpu_s"] for run in mine),
            "loadavg": statistics.median(run["loadavg_before"] for run in mine),
            "ratio": statistics.median(ratios) if ratios else None,
            "ratio_range": (min(ratios), max(ratios)) if ratios else None,
            "task_results": per_app_host(mine[0], "task_results"),
        })
    return rows


def ratio_text(value, spread=None):
    if value is None:
        return "–"
    if spread and spread[0] != spread[1]:
        return f"{value:.2f} ({spread[0]:.2f}–{spread[1]:.2f})"
    return f"{value:.2f}"


def bound(row, nproc):
    """What the run waited for, from where its CPU went: the machine's cores, mostly busy with the
    controller or with the hosts, or, when they were mostly idle, round trips and downloads."""
    busy = (row["controller_cpu_s"] + row["app_cpu_s"] + row["lb_cpu_s"]) / (row["seconds"] * nproc)
    load = row.get("loadavg", row.get("loadavg_before", 0))
    if busy < 0.6 and load > nproc:
        return f"other jobs on the machine (load {load:.0f} on {nproc} cores; this run kept {busy:.0%} busy)"
    if busy < 0.6:
        return f"waiting: SSH round trips, downloads, services starting ({busy:.0%} of {nproc} cores busy)"
    biggest = max((("controller CPU", row["controller_cpu_s"]), ("app hosts' CPU", row["app_cpu_s"]),
                   ("load balancers' CPU", row["lb_cpu_s"])), key=lambda item: item[1])
    return f"{biggest[0]} ({busy:.0%} of {nproc} cores busy with this run)"


def markdown(result, number=5):
    lines = [f"## {number}. Fleet scale: site.yml and plan.yml against the number of hosts", ""]
    if not result:
        return lines + ["Not measured in this run (`bench/fleet_scale.py`; the site.yml parts need root for the "
                        "lab).", ""]
    nproc = result["facts"]["nproc"]
    lines += [
        "`bench/fleet_scale.py` on the lab's scale fleet (`tests/lab/scale_fleet.py`: lb1 on Debian 13, lb2 on "
        "Debian 12, app hosts on Debian 13 with 2 Wt instances each, all containers on this machine's "
        f"{nproc} cores). Controller CPU is ansible-playbook and everything it waited for (workers, ssh); "
        "hosts' CPU is the containers' cgroups (app hosts and load balancers apart); SSH executions are counted "
        "from `-vvv` (one per module run). Settings from `tests/lab/ansible.cfg`: "
        + ", ".join(f"`{fact}`" for fact in result["facts"]["ansible.cfg"]) + ". Load average at start / end: "
        + " / ".join(" ".join(f"{value:.1f}" for value in result[key]) for key in ("loadavg_start", "loadavg_end"))
        + " (other jobs shared the machine: compare within a table, by ratio).",
        "",
    ]
    if result.get("site"):
        rows = idempotent_summary(result["site"])
        counted = result.get("site_counted") or {}
        lines += [
            "### Idempotent site.yml against app hosts",
            "",
            f"One converged lab; runs limited to lb1, lb2 and the first N app hosts, sizes alternating over "
            f"{result['settings']['rounds']} rounds; every run reported changed=0. Ratio: within a round, to the "
            "smallest size.",
            "",
            "| app hosts | wall (median) | ÷ smallest | controller CPU | app hosts' CPU | LBs' CPU | load avg "
            "| bound by |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in rows:
            lines.append(f"| {row['size']} | {row['seconds']:.1f} s | {ratio_text(row['ratio'], row['ratio_range'])} "
                         f"| {row['controller_cpu_s']:.1f} s | {row['app_cpu_s']:.1f} s | {row['lb_cpu_s']:.1f} s "
                         f"| {row['loadavg']:.1f} | {bound(row, nproc)} |")
        sizes = [row["size"] for row in rows]
        if counted:
            lines += ["", f"Per app host in every run: {per_app_host(counted):.0f} SSH executions (module runs), "
                          f"{per_app_host(counted, 'task_results'):.0f} task results; per load balancer: "
                          + ", ".join(f"{host} {count}" for host, count in sorted(counted['ssh_executions'].items())
                                      if host.startswith('lb')) + " SSH executions."]
        if 16 in sizes and sizes[0] == 2:
            ratio = next(row for row in rows if row["size"] == 16)["ratio"]
            verdict = "met" if ratio <= GOAL_IDEMPOTENT else "**not met**"
            lines += ["", f"Goal: 16 app hosts ≤ {GOAL_IDEMPOTENT:g} × 2 app hosts: **{ratio:.2f}**, {verdict}."]
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            span = last["size"] - first["size"]
            lines += ["", "Each more app host costs about "
                          f"{(last['seconds'] - first['seconds']) / span:.2f} s of wall time, "
                          f"{(last['controller_cpu_s'] - first['controller_cpu_s']) / span:.2f} s "
                          "of controller CPU and "
                          f"{(last['app_cpu_s'] - first['app_cpu_s']) / span:.2f} s of its own CPU per run; the rest "
                          f"of the smallest run ({first['seconds']:.0f} s) is the load balancers' plays and the "
                          "validation of the whole inventory, the same at every size."]
        lines.append("")
    for key, title, text in (
            ("cold", "Cold site.yml against app hosts",
             "Each size on freshly booted hosts (the lab rebuilt: `lab.py down`, `up`), one run each."),
            ("instances", "Cold site.yml: instances per app host",
             "4 freshly booted app hosts with 2 instances each, then 4 with 16 (lb1, lb2 fresh each time).")):
        if not result.get(key):
            continue
        lines += [f"### {title}", "", text, "",
                  "| run | wall | controller CPU | app hosts' CPU | LBs' CPU | SSH executions per app host | load avg "
                  "| bound by |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for run in result[key]:
            lines.append(f"| {run['label']} | {run['seconds']:.1f} s | {run['controller_cpu_s']:.1f} s "
                         f"| {run['app_cpu_s']:.1f} s | {run['lb_cpu_s']:.1f} s | {per_app_host(run):.0f} "
                         f"| {run['loadavg_before']:.1f} | {bound(run, nproc)} |")
        if key == "instances" and len(result[key]) == 2:
            two, sixteen = result[key]
            ratio = sixteen["seconds"] / two["seconds"]
            verdict = "met" if ratio <= GOAL_INSTANCES else "**not met**"
            lines += ["", f"16 ÷ 2 instances per host: wall **{ratio:.2f}** (goal ≤ {GOAL_INSTANCES:g}: {verdict}); "
                          f"app hosts' CPU {sixteen['app_cpu_s'] / two['app_cpu_s']:.2f}; SSH executions per app "
                          f"host {per_app_host(sixteen):.0f} vs {per_app_host(two):.0f}."]
        lines.append("")
    if result.get("plan"):
        lines += ["### plan.yml against instances", "",
                  f"Generated inventories: {PLAN_INSTANCES_PER_HOST} instances per app host, one load balancer. "
                  "**plan.yml** renders each host's files in one `wtstack.fleet.plan_files` task; **template tasks** "
                  "is how 0.1.0 did it, one `ansible.builtin.template` task per file "
                  "(`tests/integration/plan_by_template_tasks.yml`), measured where it takes minutes, not hours.",
                  "", "| instances | app hosts | scope | how | wall | controller CPU | files | load avg |",
                  "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
        for row in result["plan"]:
            lines.append(f"| {row['instances']:,} | {row['app_hosts']} | {row['scope']} | {row['how']} "
                         f"| {row['seconds']:.1f} s | {row['controller_cpu_s']:.1f} s | {row['files']:,} "
                         f"| {row['loadavg_before']:.1f} |")
        lines.append("")
        goal = [row for row in result["plan"] if row["instances"] == 1000 and row["how"] == "plan.yml"
                and row["scope"] == "all hosts"]
        if goal:
            verdict = "met" if goal[0]["seconds"] <= GOAL_PLAN_S else "**not met**"
            lines += [f"Goal: 1,000 instances on 50 hosts ≤ {GOAL_PLAN_S} s: **{goal[0]['seconds']:.0f} s**, "
                      f"{verdict}."]
        pairs = {}
        for row in result["plan"]:
            pairs.setdefault((row["instances"], row["scope"]), {})[row["how"]] = row
        for (instances, scope), pair in sorted(pairs.items()):
            if len(pair) == 2:
                lines.append(f"{instances:,} instances, {scope}: template tasks ÷ plan.yml = "
                             f"**{pair['template tasks']['seconds'] / pair['plan.yml']['seconds']:.1f}**.")
        biggest = max(result["plan"], key=lambda row: (row["instances"], row["scope"] == "all hosts"))
        lines += ["", f"At {biggest['instances']:,} instances on all {biggest['app_hosts']} app hosts the run is "
                      f"controller CPU ({biggest['controller_cpu_s']:.0f} s of {biggest['seconds']:.0f} s): about "
                      f"{biggest['controller_cpu_s'] / biggest['app_hosts'] * 1000:.0f} ms per host, "
                      "the worker process "
                      "and variables of each of its few tasks (validation, rendering), not the rendering itself.", ""]
    return lines


def parse_sizes(text):
    return sorted(int(value) for value in text.split(",") if value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--hosts", type=parse_sizes, help="idempotent run sizes (app hosts), e.g. 2,8,16,24")
    parser.add_argument("--cold-hosts", type=parse_sizes, help="cold run sizes (app hosts)")
    parser.add_argument("--rounds", type=int, help="rounds of idempotent runs")
    parser.add_argument("--plan-sizes", type=parse_sizes, help="plan.yml sizes (instances)")
    parser.add_argument("--network", help=f"the lab's loopback /24 (default {scale_fleet.DEFAULT_NETWORK})")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--results", type=Path, help="write the raw runs here as JSON")
    parser.add_argument("--docs", type=Path, help="also write DOCS/benchmarks-fleet-scale.md")
    parser.add_argument("--render-only", type=Path, metavar="RESULTS", help="measure nothing: render a --results file")
    arguments = parser.parse_args()
    if arguments.render_only:
        result = json.loads(arguments.render_only.read_text())
    else:
        settings = dict(DEFAULTS, sections=[name for name in arguments.sections.split(",") if name])
        unknown = set(settings["sections"]) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown section {', '.join(sorted(unknown))}")
        for name in ("hosts", "cold_hosts", "rounds", "plan_sizes", "network"):
            if getattr(arguments, name) is not None:
                settings[name] = getattr(arguments, name)
        started = time.monotonic()

        def log(message):
            print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

        try:
            result = run(settings, log)
        finally:
            uses_lab = set(settings["sections"]) & {"cold", "instances", "site"}
            if uses_lab and not arguments.keep_lab and os.geteuid() == 0:
                lab_command("down")
        if arguments.results:
            arguments.results.write_text(json.dumps(result, indent=1))
    text = "\n".join(markdown(result))
    if arguments.docs:
        page = ["# Fleet scale benchmark", "",
                "Generated by `bench/fleet_scale.py --docs docs` (also section 5 of [benchmarks.md](benchmarks.md) "
                "when `make bench` runs it); rewritten by every run, do not edit it by hand.", ""]
        (arguments.docs / "benchmarks-fleet-scale.md").write_text("\n".join(page) + "\n" + text.split("\n", 2)[2])
    print(text)


if __name__ == "__main__":
    main()
