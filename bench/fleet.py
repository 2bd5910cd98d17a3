"""Benchmark fleets: the topology, our HAProxy configuration rendered from the role's templates,
the previous design (bench/baseline/, kept to measure against), the 2010 seed-style configuration
for the same instances, and responders that stand in for Wt.

Everything listens on 127.0.0.0/8 only. A fleet of N instances is laid out as app hosts of up to
INSTANCES_PER_HOST instances each, host h on 127.78.<slot>.h, ports from BASE_PORT, so the fleet of
every size is a subset of the largest one and one set of responders serves them all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "haproxy"
# The role's templates before one backend per instance (one backend, use-server by map name).
BASELINE_TEMPLATES = Path(__file__).resolve().parent / "baseline"
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.wtstack.fleet.plugins.filter.haproxy_ids import haproxy_ids  # noqa: E402
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology  # noqa: E402

INSTANCES_PER_HOST = 100
BASE_PORT = 20000
APP_NETWORK = "127.78.0."
LB_NETWORK = "127.77.0."
LB_PORT = 8080
# Checks stay configured (the seed's "track" needs them), but so rarely that no check runs while
# traffic is measured: at the role's 2 s, 5,000 servers would add 2,500 checks/s in either design,
# a real cost of fleet size but not of routing.
CHECK_INTERVAL = "10m"
# Wt appends this many [A-Za-z0-9] to the prefix (its default <session-id-length>).
SESSION_SUFFIX_LENGTH = 16
SLOT = 0


def use_slot(slot):
    """Move the whole benchmark to 127.77.<slot>.0/24 (load balancers) and 127.78.<slot>.0/24 (instances),
    so that runs at the same time (a smoke test during a full run) do not collide."""
    global APP_NETWORK, LB_NETWORK, SLOT
    APP_NETWORK, LB_NETWORK, SLOT = f"127.78.{slot}.", f"127.77.{slot}.", slot


def inventory(instance_count):
    """(groups, hostvars) of a fleet with instance_count instances with generated prefixes."""
    hostvars = {"lb1": {"ansible_host": LB_NETWORK + "1"}}
    apps = []
    remaining = instance_count
    while remaining > 0:
        host = f"app{len(apps) + 1}"
        count = min(remaining, INSTANCES_PER_HOST)
        hostvars[host] = {"ansible_host": f"{APP_NETWORK}{len(apps) + 1}", "wt_instances": count,
                          "wt_base_port": BASE_PORT}
        apps.append(host)
        remaining -= count
    if len(apps) > 254:
        raise ValueError(f"{instance_count} instances need more than 254 app host addresses")
    groups = {"all": ["lb1", *apps], "haproxy": ["lb1"], "wt": apps, "ungrouped": []}
    return groups, hostvars


def topology(instance_count):
    groups, hostvars = inventory(instance_count)
    return build_topology(groups, hostvars).to_dict()


def role_variables():
    """The haproxy role's defaults and vars, as the templates see them (plain values only)."""
    variables = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        variables.update(yaml.safe_load((ROLE / name).read_text()) or {})
    return variables


@dataclass
class RenderedFiles:
    config: str
    map_text: str
    renderer: str


def render_role_files(wtstack_topology, map_path, overrides, templates=ROLE / "templates"):
    """haproxy.cfg and wt-sessions.map as the role renders them, with jinja2 directly.

    Ansible's template module uses trim_blocks and keeps the trailing newline; the templates use
    Jinja2's own filters and the collection's haproxy_ids (registered here). If they ever need
    Ansible's filters this raises and the caller falls back to playbooks/plan.yml.
    """
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)),
                                     trim_blocks=True, keep_trailing_newline=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters["wtstack.fleet.haproxy_ids"] = haproxy_ids
    variables = role_variables()
    variables.update(overrides)
    variables.update(wtstack_topology=wtstack_topology, haproxy_map_path=str(map_path))
    variables.pop("haproxy_managed_files", None)
    config = environment.get_template("haproxy.cfg.j2").render(variables)
    map_text = environment.get_template("wt-sessions.map.j2").render(variables)
    return RenderedFiles(config, map_text, "with Jinja2 directly from the topology `build_topology` returns")


def render_with_plan(instance_count, workdir, overrides):
    """The same files through the collection's own playbook: plan.yml on a generated inventory."""
    groups, hostvars = inventory(instance_count)
    apps = {host: hostvars[host] for host in groups["wt"]}
    inventory_file = workdir / f"inventory-{instance_count}.yml"
    inventory_file.write_text(yaml.safe_dump(
        {"all": {"children": {"haproxy": {"hosts": {"lb1": hostvars["lb1"]}}, "wt": {"hosts": apps}}}}))
    # Extra vars, because some of these are role vars (vars/main.yml), which inventory cannot override.
    overrides_file = workdir / f"overrides-{instance_count}.json"
    overrides_file.write_text(json.dumps(overrides))
    plan_dir = workdir / f"plan-{instance_count}"
    result = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory_file), "playbooks/plan.yml",
         "-e", f"plan_dir={plan_dir}", "-e", f"@{overrides_file}", "--limit", "localhost,lb1"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin"}, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"plan.yml failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    rendered = plan_dir / "lb1/etc/haproxy"
    return RenderedFiles((rendered / "haproxy.cfg").read_text(), (rendered / "wt-sessions.map").read_text(),
                         "with `ansible-playbook playbooks/plan.yml`")


# Global settings only meaningful for the packaged service: privilege drop, syslog.
_DROPPED_GLOBAL = re.compile(r"^\s*(log|chroot|user|group|daemon|nbthread|cpu-map|server-state-file)\b")
_DROPPED_DEFAULTS = re.compile(r"^\s*(log\s+global|load-server-state-from-file)\b")


def adapt(config, *, nbthread, stats_socket, server_close, state_file=None):
    """Run a production config in the benchmark: foreground, one thread, no syslog, no privilege
    drop, admin socket in the work directory; optionally force server-side connection close. The
    server-state file only matters across reloads: kept (in the work directory) when `state_file`
    is given, for the reload measurement."""
    lines = []
    section = None
    for line in config.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace() and not line.startswith("#"):
            section = stripped.split()[0]
            lines.append(line)
            if section == "global":
                lines.append(f"    nbthread {nbthread}")
                lines.append(f"    stats socket {stats_socket} mode 600 level admin")
                if state_file:
                    lines.append(f"    server-state-file {state_file}")
            elif section == "defaults" and server_close:
                lines.append("    option http-server-close")
            continue
        if section == "global" and (_DROPPED_GLOBAL.match(line) or stripped.startswith("stats socket")):
            continue
        if section == "defaults" and _DROPPED_DEFAULTS.match(line):
            if not (state_file and stripped.startswith("load-server-state-from-file")):
                continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _render(design, instance_count, workdir, *, server_close, lb_address, renderer="jinja2", tag=None,
            state_file=None):
    """(config path, how it was rendered) of our design ("ours") or the previous one ("baseline")."""
    workdir = Path(workdir).resolve()
    tag = tag or f"{design}-{instance_count}-{'sc' if server_close else 'ka'}"
    map_path = workdir / f"{tag}.map"
    overrides = {"haproxy_bind_address": lb_address, "haproxy_bind_port": LB_PORT,
                 "haproxy_stats_socket_path": str(workdir / f"{tag}.sock"),
                 "haproxy_check_interval": CHECK_INTERVAL,
                 # Abstract socket names are machine-wide here (one network namespace): one per config.
                 "haproxy_relay_address": f"abns@wtstack-bench-{SLOT}-{tag}"}
    if renderer == "plan" and design == "ours":
        files = render_with_plan(instance_count, workdir, overrides)
        files.config = files.config.replace(role_variables()["haproxy_map_path"], str(map_path))
    else:
        templates = ROLE / "templates" if design == "ours" else BASELINE_TEMPLATES
        files = render_role_files(topology(instance_count), map_path, overrides, templates)
    config = adapt(files.config, nbthread=1, stats_socket=workdir / f"{tag}.sock", server_close=server_close,
                   state_file=state_file)
    map_path.write_text(files.map_text)
    config_path = workdir / f"{tag}.cfg"
    config_path.write_text(config)
    return config_path, files.renderer


def ours(instance_count, workdir, **options):
    """The role's design: a backend per instance found by map, backend wt placing new sessions."""
    return _render("ours", instance_count, workdir, **options)


def baseline(instance_count, workdir, **options):
    """The previous design (bench/baseline/): one backend, `use-server %[urlp(wtd),map_beg(...)]`."""
    return _render("baseline", instance_count, workdir, **options)


def seed(instance_count, workdir, *, server_close, lb_address, tag=None, state_file=None):
    """The 2010 blog's design for the same instances and prefixes: a backend per instance, a
    url_sub ACL and an nbsrv ACL per instance, and a round-robin backend of tracking servers.
    Modernised only to parse on HAProxy 2.6+: timeout keywords, addresses on tracking servers."""
    workdir = Path(workdir).resolve()
    instances = topology(instance_count)["instances"]
    tag = tag or f"seed-{instance_count}-{'sc' if server_close else 'ka'}"
    acls, rules, trackers, backends = [], [], [], []
    for k, instance in enumerate(instances, 1):
        address = f"{instance['connect_address']}:{instance['port']}"
        acls.append(f"        acl srv{k} url_sub wtd={instance['prefix']}")
        acls.append(f"        acl srv{k}_up nbsrv(bck{k}) gt 0")
        rules.append(f"        use_backend bck{k} if srv{k}_up srv{k}")
        trackers.append(f"        server srv{k} {address} track bck{k}/srv{k}")
        backends.append(f"backend bck{k}\n        balance roundrobin\n"
                        f"        server srv{k} {address} check inter {CHECK_INTERVAL}\n")
    config = "\n".join([
        "global",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    option httplog",
        "    option dontlognull",
        "    retries 3",
        "    option redispatch",
        "    maxconn 10000",
        "    timeout connect 5000",
        "    timeout client 50000",
        "    timeout server 50000",
        "",
        "frontend wt",
        f"        bind {lb_address}:{LB_PORT}",
        *acls,
        *rules,
        "        default_backend bck_lb",
        "",
        "backend bck_lb",
        "        balance roundrobin",
        *trackers,
        "",
        *backends,
    ])
    if state_file:
        config = config.replace("defaults\n", "defaults\n    load-server-state-from-file global\n", 1)
    config = adapt(config, nbthread=1, stats_socket=workdir / f"{tag}.sock", server_close=server_close,
                   state_file=state_file)
    config_path = workdir / f"{tag}.cfg"
    config_path.write_text(config)
    return config_path


DESIGN_RENDERERS = {"ours": ours, "baseline": baseline}


def config(design, instance_count, workdir, **options):
    """Config path of any design (ours, baseline, seed) for instance_count instances."""
    if design == "seed":
        options.pop("renderer", None)
        return seed(instance_count, workdir, **options)
    return DESIGN_RENDERERS[design](instance_count, workdir, **options)[0]


# One responder process per this many instances: a process can open at most 20,000 files here
# (hard limit), and idle keep-alive connections from every load balancer under test add up.
INSTANCES_PER_RESPONDER = 1000


def responders(instance_count, workdir):
    """HAProxy configurations that together listen on every instance's address and port and answer
    200 at once, saying which instance answered (x-served-by: address:port)."""
    instances = topology(instance_count)["instances"]
    configs = []
    for first in range(0, len(instances), INSTANCES_PER_RESPONDER):
        ports_by_host = {}
        for instance in instances[first:first + INSTANCES_PER_RESPONDER]:
            ports_by_host.setdefault(instance["connect_address"], []).append(instance["port"])
        binds = []
        for address, ports in ports_by_host.items():
            ports.sort()
            if ports != list(range(ports[0], ports[-1] + 1)):
                raise RuntimeError(f"ports of {address} are not consecutive")
            binds.append(f"    bind {address}:{ports[0]}-{ports[-1]}")
        config = "\n".join([
            "global",
            "    nbthread 1",
            "    maxconn 9000",  # 2 files per connection plus the listeners stay under 20,000
            "defaults",
            "    mode http",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            # Like a real server, close idle keep-alive connections after a while, so the idle pools
            # of the load balancers under test cannot exhaust this process's connections.
            "    timeout http-keep-alive 2s",
            "frontend instances",
            *binds,
            '    http-request return status 200 content-type text/plain string "ok"'
            ' hdr x-served-by "%[dst]:%[dst_port]"',
            "",
        ])
        config_path = workdir / f"responder-{len(configs) + 1}.cfg"
        config_path.write_text(config)
        last = instances[min(first + INSTANCES_PER_RESPONDER, len(instances)) - 1]
        configs.append((config_path, instances[first], last))
    return configs


def served_by_table(instance_count):
    """Lines '<address:port> <prefix>' for the load generator and the routing check."""
    return [f"{i['connect_address']}:{i['port']} {i['prefix']}" for i in topology(instance_count)["instances"]]
