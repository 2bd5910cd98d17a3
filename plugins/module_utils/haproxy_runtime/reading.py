# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading ServerViews from HAProxy: every server at once, or only the servers asked about.

The whole table (``show servers state`` and ``show stat -1 4 -1``) grows with the fleet: four
servers an instance, about 5 MB of ``show stat`` at 5,000 instances. The Wt instances of backend
``wt`` are read instead with commands that each return one instance's servers, all of them in one
exchange: ``get weight wt/<name>`` (the placement server's weights), ``show servers state
wt.<name>`` and ``show stat wt.<name> 4 -1`` (its own backend: the instance's server, ``ws`` and
``relay``), and ``show stat <id of wt> 4 <id of the placement server>`` (ids.py: by name HAProxy
would pick the frontend ``wt``). The placement server's own admin flags (its drain) are not in any
per-server reply while it is down or in maint; then ``show servers state wt`` is read as well, in
a second exchange, and only the lines of the servers asked about are parsed.
"""

from __future__ import annotations

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import check_name
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import (
    UnknownBackend,
    UnknownServer,
    classify_reply,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.ids import (
    PLACEMENT_BACKEND_ID,
    placement_server_id,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import (
    parse_servers_state,
    parse_show_stat,
    parse_weight,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.servers import (
    DRAIN_MASK,
    FDRAIN,
    fold_instances,
    merge_server_views,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import PLACEMENT_BACKEND, instance_backend_name

# Server rows of every proxy. Never `show stat <name> ...` for backend wt: HAProxy looks the name up
# among all proxies, and where a frontend and a backend share it (our `wt`) it picks the frontend.
SHOW_SERVER_STATS = "show stat -1 4 -1"
SHOW_SERVERS_STATE = "show servers state"


def read_all(client):
    """Every server of every backend, unfolded, from one exchange (both commands at one moment)."""
    commands = [SHOW_SERVERS_STATE, SHOW_SERVER_STATS]
    state_reply, stat_reply = client.query(commands)
    return merge_server_views(parse_servers_state(state_reply, commands[0]), parse_show_stat(stat_reply, commands[1]))


def read_servers(client, backend=None, fold=True):
    """Every server (of one backend): a list of ServerView.

    With ``fold``, each instance is one row (see fold_instances) and the instances' own backends
    are left out, unless ``backend`` names one of them.
    """
    views = read_all(client)
    shown = fold_instances(views) if fold else views
    if backend is None:
        return shown
    selected = [view for view in shown if view.backend == backend]
    if not selected:
        selected = [view for view in views if view.backend == backend]
    if not selected:
        names = sorted({view.backend for view in shown})
        raise UnknownBackend(f"HAProxy on {client.address} has no backend '{check_name('backend', backend)}'; "
                             f"its backends are: {', '.join(names) or 'none'}")
    return selected


def backend_names(client):
    return sorted({view.backend for view in read_servers(client)})


def read_named(client, backend, names):
    """{name: ServerView} of the servers ``names`` of ``backend``: only those when they are Wt
    instances of backend wt (read_instances), else from the whole table."""
    for name in names:
        check_name("server", name)
    if backend == PLACEMENT_BACKEND and names:
        views = read_instances(client, names)
        if views is not None:
            return views
    return read_whole_named(client, backend, names)


def read_whole_named(client, backend, names):
    """read_named from the whole table (any backend, any server; the cost grows with the fleet)."""
    views = read_servers(client, backend)
    by_name = {view.server: view for view in views}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise UnknownServer(f"backend '{backend}' on {client.address} has no server "
                            f"{', '.join(repr(name) for name in missing)}; its servers are: "
                            f"{', '.join(view.server for view in views) or 'none'}")
    return {name: by_name[name] for name in names}


def server_reader(client, backend):
    """``read(names)``: {name: ServerView} of those servers of ``backend``, one exchange a read."""
    def read(names):
        return read_named(client, backend, names)
    return read


def instance_commands(name):
    """The commands that read one instance of backend wt, and nothing else."""
    own = instance_backend_name(name)
    return [f"get weight {PLACEMENT_BACKEND}/{name}", f"show servers state {own}", f"show stat {own} 4 -1",
            f"show stat {PLACEMENT_BACKEND_ID} 4 {placement_server_id(name)}"]


def read_instances(client, names):
    """{name: ServerView} of the instances ``names`` of backend wt, reading only them; None when one
    is not an instance the way haproxy.cfg.j2 writes them (the caller then reads the whole table).
    Raises UnknownServer naming every name backend wt does not have."""
    commands = [command for name in names for command in instance_commands(name)]
    replies = client.exchange(commands)
    parts, missing = {}, []
    for index, name in enumerate(names):
        part = _instance_part(client, name, commands[4 * index:4 * index + 4], replies[4 * index:4 * index + 4])
        if part == "missing":
            missing.append(name)
        elif part is None:
            return None
        else:
            parts[name] = part
    if missing:
        raise UnknownServer(f"backend '{PLACEMENT_BACKEND}' on {client.address} has no server "
                            f"{', '.join(repr(name) for name in missing)}")
    unknown = [name for name, part in parts.items() if part["flags"] is None]
    if unknown:
        for name, record in _placement_records(client, unknown).items():
            parts[name]["record"] = record
    views = {name: _instance_view(name, parts[name]) for name in names}
    return None if None in views.values() else views


def _instance_part(client, name, commands, replies):
    """What the replies about one instance say: "missing", None (not an instance read this way),
    or the parsed replies."""
    weight_reply, state_reply, stat_reply, placement_reply = replies
    try:
        classify_reply(commands[0], weight_reply, client.address)
    except (UnknownServer, UnknownBackend):
        return "missing"
    try:
        classify_reply(commands[1], state_reply, client.address)
    except UnknownBackend:
        return None
    for command, reply in zip(commands[2:], replies[2:]):
        classify_reply(command, reply, client.address)
    rows = parse_show_stat(placement_reply, commands[3])
    if len(rows) != 1 or (rows[0].get("pxname"), rows[0].get("svname")) != (PLACEMENT_BACKEND, name):
        return None  # a configuration without the ids (or another server holds this one's)
    records = parse_servers_state(state_reply, commands[1])
    own = next((record for record in records if record.get("srv_name") == name), None)
    if own is None:
        return None
    weight, initial_weight = parse_weight(weight_reply, commands[0])
    return {"records": records, "rows": parse_show_stat(stat_reply, commands[2]), "placement": rows[0],
            "own": own, "weight": weight, "initial_weight": initial_weight,
            "flags": placement_flags(rows[0].get("status"), int(own.get("srv_admin_state") or 0))}


def placement_flags(status, own_mask):
    """The placement server's own admin flags as its ``show stat`` status shows them, or None where
    it hides them: in maint (inherited maint hides what it has of its own), down (no drain shown),
    or while its own server is drained too (its drain may be inherited)."""
    if own_mask & DRAIN_MASK or not status:
        return None
    if status.startswith("DRAIN"):
        return FDRAIN
    if status in ("UP", "no check") or status.startswith("UP "):
        return 0
    return None


def _placement_records(client, names):
    """The ``show servers state wt`` records of ``names``: the whole backend is read, only their
    lines are parsed."""
    command = f"show servers state {PLACEMENT_BACKEND}"
    reply = client.query([command])[0]
    lines = reply.split("\n")
    wanted = set(names)
    kept = lines[:2] + [line for line in lines[2:] if line.split(" ", 4)[3:4] and line.split(" ", 4)[3] in wanted]
    return {record["srv_name"]: record for record in parse_servers_state("\n".join(kept), command)}


def _instance_view(name, part):
    """The instance's row: its own backend's servers and its placement server, folded (None when
    they do not fold into an instance)."""
    record = part.get("record") or {
        "be_name": PLACEMENT_BACKEND, "srv_name": name, "srv_admin_state": str(part["flags"]),
        "srv_op_state": part["own"].get("srv_op_state"), "srv_uweight": str(part["weight"]),
        "srv_iweight": str(part["initial_weight"]), "srv_addr": "-", "srv_port": "-"}
    views = merge_server_views(part["records"] + [record], part["rows"] + [part["placement"]])
    folded = [view for view in fold_instances(views) if view.backend == PLACEMENT_BACKEND]
    return folded[0] if len(folded) == 1 and folded[0].is_instance else None  # None: not one of ours
