# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the haproxy_info module does, once Ansible has checked its options."""

from __future__ import annotations

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import RuntimeClient
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import RuntimeApiError
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import to_int
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.reading import (
    read_named,
    read_servers,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import VRRP_RELEASE_DIR, VRRP_STATE_DIR, vip_status


def run_info_module(params, client=None):
    """(failed, msg, result) of one haproxy_info run with ``params`` (the module's options)."""
    # Read first: where HAProxy does not answer, the VIPs' state is what the operator needs most.
    vrrp = {} if params.get("vips") is None else dict(vrrp=vip_status(
        [{"name": str(vip["name"]), "address": str(vip["address"])} for vip in params["vips"]],
        params.get("vrrp_state_dir") or VRRP_STATE_DIR, params.get("vrrp_release_dir") or VRRP_RELEASE_DIR))
    try:
        client = client or RuntimeClient(params["socket"], timeout=params["socket_timeout"])
        info = client.show_info()
        views = _views(client, params)
    except RuntimeApiError as error:
        return True, str(error), vrrp
    haproxy = dict(version=info.get("Version"), node=info.get("node"), pid=to_int(info.get("Pid")),
                   uptime_sec=to_int(info.get("Uptime_sec")))
    return False, None, dict(changed=False, haproxy=haproxy, servers=[view.as_dict() for view in views], **vrrp)


def _views(client, params):
    backend, fold = params["backend"], not params["raw"]
    names = [params["server"]] if params["server"] else list(dict.fromkeys(params.get("servers") or ()))
    if names and backend and fold:
        return list(read_named(client, backend, names).values())
    views = read_servers(client, backend, fold=fold)
    if params["server"] is None and params.get("servers") is None:
        return views
    views = [view for view in views if view.server in names]
    missing = [name for name in names if name not in {view.server for view in views}]
    if missing:
        raise RuntimeApiError(f"no backend on {params['socket']} has a server named "
                              f"{', '.join(repr(name) for name in missing)}")
    return views
