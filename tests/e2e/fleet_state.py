"""What the lab fleet is doing, for the end-to-end tests that change it: each instance's process id,
when HAProxy had each instance in maintenance, and the lab's inventory with other instances.

Shared helpers, so that no test module imports another (each sets up the state it needs).
"""

import re
import time

import yaml
from wt_http import whoami

# An instance's placement server in backend wt follows its own server's maintenance (`via ...`).
MAINT = re.compile(r"^(\d+\.\d+) \S+ haproxy\[\d+\]: (?:\[WARNING\]\s+\(\d+\) : )?Server wt/(\S+) "
                   r"(is going DOWN for maintenance|is UP/DRAIN \(leaving (?:forced )?maintenance\)|"
                   r"is UP \(leaving (?:forced )?maintenance\))", re.M)


def maintenance_windows(lab, since):
    """{server: [(start, end)]} from every load balancer's HAProxy log."""
    windows = {}
    for lb in lab.topology.lb_hosts:
        log = lab.ssh(lb, f"journalctl -u haproxy -o short-unix --no-pager --since @{int(since) - 1}")
        opened = {}
        for stamp, server, event in MAINT.findall(log):
            if event.startswith("is going DOWN"):
                opened.setdefault(server, float(stamp))
            elif server in opened:
                windows.setdefault(server, []).append((opened.pop(server), float(stamp)))
        for server, start in opened.items():
            windows.setdefault(server, []).append((start, time.time()))
    return windows


def instance_pids(lab):
    """{server name: process id} of every instance, as the instance itself reports it."""
    return {i.server_name: whoami(f"http://{i.connect_address}:{i.port}")["pid"] for i in lab.topology.instances}


def inventory_with(lab, tmp_path, host, wt_instances):
    """The lab's inventory with another wt_instances on one host, written under tmp_path."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    for group in inventory["all"]["children"].values():
        if (group["hosts"].get(host) or {}).get("wt_instances") is not None:
            group["hosts"][host]["wt_instances"] = wt_instances
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path
