# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading ServerViews from HAProxy: every server at once, or the servers asked about."""

from __future__ import annotations

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import check_name
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import UnknownBackend, UnknownServer
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import (
    parse_servers_state,
    parse_show_stat,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.servers import (
    fold_instances,
    merge_server_views,
)

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
    """{name: ServerView} of the servers ``names`` of ``backend``, from one read."""
    for name in names:
        check_name("server", name)
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
