# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The view of HAProxy's servers the modules report: one ServerView a server, one a Wt instance.

A server's state is read from two commands and merged: ``show servers state`` carries the
administrative flags and the user weight in a stable, versioned format; ``show stat`` carries
what an operator watches (status, sessions, queue, seconds since the last session).

An instance of the fleet is two HAProxy servers of the same name (haproxy.cfg.j2): its *own*
backend's server (health checked; the session map sends its sessions there) and a *placement*
server in backend ``wt`` that tracks it (new sessions are placed among those). ``fold_instances``
turns each such pair into one ServerView, named like the placement server (``wt/app1-9090``), with
the sessions of the own backend's ``ws`` server (WebSocket upgrades, on connections of their own)
counted in. Users and playbooks never name the internal backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import StreamCounts, to_int

ADMIN_STATES = ("ready", "drain", "maint")

# srv_admin_state bits, from management.txt ("show servers state") and include/haproxy/server-t.h.
ADMIN_FLAGS = (
    (0x01, "FMAINT", "forced into maintenance over the runtime API"),
    (0x02, "IMAINT", "maintenance inherited from a tracked server"),
    (0x04, "CMAINT", "disabled in the configuration"),
    (0x08, "FDRAIN", "forced into drain over the runtime API"),
    (0x10, "IDRAIN", "drain inherited from a tracked server"),
    (0x20, "RMAINT", "maintenance because its address did not resolve"),
    (0x40, "HMAINT", "FQDN set over the runtime API"),
)
# HAProxy's own masks (SRV_ADMF_MAINT, SRV_ADMF_DRAIN). CMAINT is not in the maintenance mask:
# it stays set on a server that was `disabled` in haproxy.cfg and has been enabled since.
FDRAIN = 0x08
MAINT_MASK = 0x23
DRAIN_MASK = 0x18
INHERITED_MASK = 0x02 | 0x10 | 0x20  # flags `set server ... state` cannot clear
TRACKING_MASK = 0x02 | 0x10  # flags a tracking server copies from the server it tracks

OPERATIONAL_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
CHECK_RESULTS = {0: "unknown", 1: "neutral", 2: "failed", 3: "passed", 4: "condpass"}
CHECK_ENABLED = 0x04
CHECK_PAUSED = 0x08


def admin_flag_names(mask):
    return [name for bit, name, dummy in ADMIN_FLAGS if mask & bit]


def admin_state(mask):
    """``maint``, ``drain`` or ``ready`` from srv_admin_state, the way HAProxy itself ranks them."""
    if mask & MAINT_MASK:
        return "maint"
    if mask & DRAIN_MASK:
        return "drain"
    return "ready"


def explain_admin_flags(mask):
    return "; ".join(meaning for bit, dummy, meaning in ADMIN_FLAGS if mask & bit) or "no administrative flag"


@dataclass(frozen=True)
class ServerView:
    """One server as the modules report it (``as_dict()`` is what they return)."""

    backend: str
    server: str
    address: str | None
    admin_state: str            # ready | drain | maint
    admin_flags: tuple          # names of the srv_admin_state bits that are set
    admin_mask: int
    operational_state: str      # stopped | starting | running | stopping
    status: str | None          # show stat's status: UP, DOWN, DRAIN, MAINT, NOLB, "UP 1/2", "no check"...
    check_status: str | None    # L7OK, L4CON... ("* " prefix of a running check removed)
    check_description: str | None
    check_result: str           # unknown | neutral | failed | passed | condpass
    checks_enabled: bool
    check_health: int | None
    check_rise: int | None
    check_fall: int | None
    weight: int | None          # user weight (what `set server ... weight` changes)
    initial_weight: int | None  # weight from haproxy.cfg; `NN%` is relative to it
    scur: int | None
    qcur: int | None
    stot: int | None
    lastsess: int | None        # seconds since a session was last assigned, -1 if never
    tracks: tuple | None = None  # (backend, server) this server takes its state from (`track`)
    # Set on a folded instance row: the backend its sessions are routed to, its two servers, and the
    # lanes: other servers of its own backend that track its own server (WebSocket upgrades' "ws").
    own_backend: str | None = None
    placement: ServerView | None = field(default=None, repr=False, compare=False)
    own: ServerView | None = field(default=None, repr=False, compare=False)
    lanes: tuple = field(default=(), repr=False, compare=False)

    @property
    def is_instance(self):
        return self.own is not None

    def as_dict(self):
        result = {item.name: getattr(self, item.name) for item in fields(self)
                  if item.name not in ("placement", "own", "lanes", "tracks")}
        result["admin_flags"] = list(self.admin_flags)
        result["tracks"] = "/".join(self.tracks) if self.tracks else None
        return result


def _tracked(row):
    tracked = row.get("tracked") or ""
    backend, sep, server = tracked.partition("/")
    return (backend, server) if sep else None


def merge_server_views(state_records, stat_rows):
    """ServerView per ``show servers state`` record, completed with its ``show stat`` row."""
    stats = {(row.get("pxname"), row.get("svname")): row for row in stat_rows}
    views = []
    for record in state_records:
        mask = to_int(record.get("srv_admin_state"), 0)
        check_state = to_int(record.get("srv_check_state"), 0)
        row = stats.get((record.get("be_name"), record.get("srv_name")), {})
        check_status = (row.get("check_status") or "").lstrip("* ") or None
        port = record.get("srv_port")
        address = row.get("addr") or (f"{record.get('srv_addr')}:{port}" if port not in (None, "-", "0") else
                                      record.get("srv_addr"))
        views.append(ServerView(
            backend=record.get("be_name"),
            server=record.get("srv_name"),
            address=address,
            admin_state=admin_state(mask),
            admin_flags=tuple(admin_flag_names(mask)),
            admin_mask=mask,
            operational_state=OPERATIONAL_STATES.get(to_int(record.get("srv_op_state")), "unknown"),
            status=row.get("status") or None,
            check_status=check_status,
            check_description=row.get("check_desc") or None,
            check_result=CHECK_RESULTS.get(to_int(record.get("srv_check_result")), "unknown"),
            checks_enabled=bool(check_state & CHECK_ENABLED) and not check_state & CHECK_PAUSED,
            check_health=to_int(record.get("srv_check_health")),
            check_rise=to_int(row.get("check_rise")),
            check_fall=to_int(row.get("check_fall")),
            weight=to_int(record.get("srv_uweight")),
            initial_weight=to_int(record.get("srv_iweight")),
            scur=to_int(row.get("scur")),
            qcur=to_int(row.get("qcur")),
            stot=to_int(row.get("stot")),
            lastsess=to_int(row.get("lastsess")),
            tracks=_tracked(row),
        ))
    return views


def _own_server(view, by_name):
    """The server ``view`` tracks when that makes the pair an instance: same name, another backend."""
    target = by_name.get(view.tracks) if view.tracks else None
    if target is None or target.server != view.server or target.backend == view.backend:
        return None
    return target


def fold_instances(views):
    """One row per instance, in the order HAProxy lists the placement servers.

    A server that tracks a server of the same name in another backend is an instance's placement
    server, and that backend is the instance's own. Each pair becomes one ServerView (see
    fold_pair), with the servers of the own backend that track the own server (its lanes: "ws",
    for WebSocket upgrades) counted in; every server of an own backend (the instance's, its lanes,
    its relay backup) is left out as a row. Servers of any other backend stay as they are.
    """
    by_name = {(view.backend, view.server): view for view in views}
    own_backends = {own.backend for own in (_own_server(view, by_name) for view in views) if own is not None}
    lanes = {}
    for view in views:
        if view.backend in own_backends and view.tracks and view.tracks[0] == view.backend:
            lanes.setdefault(view.tracks, []).append(view)
    folded = []
    for view in views:
        if view.backend in own_backends:
            continue
        own = _own_server(view, by_name)
        folded.append(fold_pair(view, own, lanes.get((own.backend, own.server), ())) if own is not None else view)
    return folded


def instance_admin_state(placement, own):
    """maint when the own backend's server is (its sessions move); drain when new sessions stop
    (the placement server is drained or in maint by itself, or the own server is drained); else ready."""
    if own.admin_state == "maint":
        return "maint"
    if admin_state(placement.admin_mask & ~TRACKING_MASK) != "ready" or own.admin_state == "drain":
        return "drain"
    return "ready"


def _lastsess(*values):
    known = [value for value in values if value is not None]
    assigned = [value for value in known if value >= 0]
    if assigned:
        return min(assigned)
    return -1 if known else None


def _sum(*values):
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def fold_pair(placement, own, lanes=()):
    """The instance as one server: health and address of its own server, weight of its placement
    server (the share of new sessions), sessions and queue of both and of its lanes (the servers of
    its own backend that track its own server: WebSockets go through "ws")."""
    counted = (placement, own, *lanes)
    state = instance_admin_state(placement, own)
    mask = (placement.admin_mask & ~TRACKING_MASK) | own.admin_mask
    status = own.status
    if state == "drain" and own.operational_state == "running" and own.status in ("UP", "no check"):
        status = "DRAIN"
    return ServerView(
        backend=placement.backend,
        server=placement.server,
        address=own.address,
        admin_state=state,
        admin_flags=tuple(admin_flag_names(mask)),
        admin_mask=mask,
        operational_state=own.operational_state,
        status=status,
        check_status=own.check_status,
        check_description=own.check_description,
        check_result=own.check_result,
        checks_enabled=own.checks_enabled,
        check_health=own.check_health,
        check_rise=own.check_rise,
        check_fall=own.check_fall,
        weight=placement.weight,
        initial_weight=placement.initial_weight,
        scur=_sum(*(server.scur for server in counted)),
        qcur=_sum(*(server.qcur for server in counted)),
        stot=_sum(*(server.stot for server in counted)),
        lastsess=_lastsess(*(server.lastsess for server in counted)),
        tracks=placement.tracks,
        own_backend=own.backend,
        placement=placement,
        own=own,
        lanes=tuple(lanes),
    )


# --- what the modules decide ----------------------------------------------------


def streams_of(view, counts):
    """The streams of a server, or of every server of an instance (placement, own, lanes)."""
    keys = [(view.backend, view.server)]
    if view.is_instance:
        keys = [(view.placement.backend, view.server), (view.own.backend, view.server)]
        keys += [(lane.backend, lane.server) for lane in view.lanes]
    total = StreamCounts()
    for key in keys:
        total = total + counts.get(key, StreamCounts())
    return total
