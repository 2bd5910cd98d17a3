# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the stats socket): client, parsers and the logic of our modules.

Plain Python with no Ansible import, so it is unit-tested against replies captured from real
HAProxy 2.6 and 3.0 (tests/unit/fixtures/haproxy/) and shared by the haproxy_server and
haproxy_info modules, which only translate options in and errors out.

A server's state is read from two commands and merged: ``show servers state`` carries the
administrative flags and the user weight in a stable, versioned format; ``show stat`` carries
what an operator watches (status, sessions, queue, seconds since the last session). ``show
stat`` columns differ between versions, so rows are read by the header's names, never by
position.

An instance of the fleet is two HAProxy servers of the same name (haproxy.cfg.j2): its *own*
backend's server (health checked; the session map sends its sessions there) and a *placement*
server in backend ``wt`` that tracks it (new sessions are placed among those). ``fold_instances``
turns each such pair into one ServerView, named like the placement server (``wt/app1-9090``), with
the sessions of the own backend's ``ws`` server (WebSocket upgrades, on connections of their own) counted in, and
``plan_change`` sends each state to the object that holds it: drain to the placement server only
(the own backend keeps serving the sessions), maint to the own backend's server (the placement
server inherits it). Users and playbooks never name the internal backends.
"""

from __future__ import annotations

import csv
import re
import socket
import time
from dataclasses import asdict, dataclass, field, fields

DEFAULT_SOCKET = "/run/haproxy/admin.sock"
DEFAULT_TIMEOUT = 10.0
ADMIN_STATES = ("ready", "drain", "maint")
MAX_WEIGHT = 256  # HAProxy refuses larger weights
_RECV_SIZE = 65536
# Server rows of every proxy. Never `show stat <name> ...`: HAProxy looks the name up among all
# proxies, and where a frontend and a backend share it (our `wt`) it picks the frontend.
SHOW_SERVER_STATS = "show stat -1 4 -1"
# Every stream with its backend, server and HTTP state: the only view that tells a WebSocket (a
# tunnel, which only the instance's restart ends) from a request in flight.
SHOW_ALL_STREAMS = "show sess all"
# HAProxy reads a command line into one buffer (tune.bufsize, 16 kB by default): batches of `set
# server` commands are sent in lines well below it.
MAX_COMMAND_LINE = 8000

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
MAINT_MASK = 0x23
DRAIN_MASK = 0x18
INHERITED_MASK = 0x02 | 0x10 | 0x20  # flags `set server ... state` cannot clear
TRACKING_MASK = 0x02 | 0x10  # flags a tracking server copies from the server it tracks

OPERATIONAL_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
CHECK_RESULTS = {0: "unknown", 1: "neutral", 2: "failed", 3: "passed", 4: "condpass"}
CHECK_ENABLED = 0x04
CHECK_PAUSED = 0x08

# HAProxy identifiers: names we splice into commands must not smuggle a `;` or a newline in.
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_WEIGHT = re.compile(r"\s*(\d+)\s*(%?)\s*")

# Replies HAProxy gives instead of output (same words in 2.6 and 3.0, see the fixtures).
_UNKNOWN_BACKEND_REPLIES = ("No such backend.", "Can't find backend.", "No such proxy.")
_UNKNOWN_SERVER_REPLIES = ("No such server.",)
_PERMISSION_DENIED_REPLIES = ("Permission denied",)


# --- errors -----------------------------------------------------------------

class RuntimeApiError(Exception):
    """Anything that stopped a runtime API exchange; ``str()`` is the message for the operator."""


class SocketUnavailable(RuntimeApiError):
    """The socket could not be reached at all (nothing was sent)."""


class SocketMissing(SocketUnavailable):
    pass


class SocketPermissionDenied(SocketUnavailable):
    pass


class SocketConnectionRefused(SocketUnavailable):
    pass


class SocketTimeout(SocketUnavailable):
    pass


class CommandError(RuntimeApiError):
    """HAProxy answered a command with an error message (``reply``)."""

    def __init__(self, message, command=None, reply=None):
        super().__init__(message)
        self.command = command
        self.reply = reply


class CommandPermissionDenied(CommandError):
    pass


class UnknownBackend(CommandError):
    pass


class UnknownServer(CommandError):
    pass


# --- connection ---------------------------------------------------------------

def parse_address(address):
    """``(family, target)`` for a unix socket path or a ``tcp:HOST:PORT`` / ``ipv4@`` / ``ipv6@`` address."""
    if not isinstance(address, str) or not address.strip():
        raise RuntimeApiError("the runtime API address is empty: give a unix socket path or tcp:HOST:PORT")
    address = address.strip()
    if address.startswith("unix@"):
        return socket.AF_UNIX, address[len("unix@"):]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    for scheme, family in (("tcp:", None), ("tcp@", None), ("ipv4@", socket.AF_INET), ("ipv6@", socket.AF_INET6)):
        if address.startswith(scheme):
            host, sep, port = address[len(scheme):].rpartition(":")
            host = host.strip("[]")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                break
            if family is None:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return family, (host, int(port))
    raise RuntimeApiError(
        f"cannot read runtime API address '{address}': give an absolute unix socket path "
        "(/run/haproxy/admin.sock) or tcp:HOST:PORT")


def check_name(kind, name):
    """Backend and server names go into command lines: refuse anything HAProxy would not name a proxy."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuntimeApiError(f"{kind} name {name!r} is not a HAProxy identifier (letters, digits, '-', '_', '.', ':')")
    return name


def classify_reply(command, reply, address=""):
    """Raises the matching CommandError for an error reply; returns quietly for anything else."""
    text = reply.strip()
    first = text.splitlines()[0] if text else ""
    where = f" on {address}" if address else ""
    if first in _PERMISSION_DENIED_REPLIES:
        raise CommandPermissionDenied(
            f"HAProxy refused `{command}`{where}: Permission denied; the socket's `stats socket` line "
            "needs `level admin`", command, reply)
    if first in _UNKNOWN_BACKEND_REPLIES:
        raise UnknownBackend(f"HAProxy has no backend named in `{command}`{where} ({first})", command, reply)
    if first in _UNKNOWN_SERVER_REPLIES:
        raise UnknownServer(f"HAProxy has no server named in `{command}`{where} ({first})", command, reply)
    if first.startswith("Unknown command"):
        raise CommandError(f"this HAProxy does not know `{command}`{where}", command, reply)


class RuntimeClient:
    """One connection per exchange, in HAProxy's non-interactive mode: send one line, read to EOF.

    ``connect`` (tests only) replaces ``socket.socket`` + ``connect`` and returns a connected socket.
    """

    def __init__(self, address=DEFAULT_SOCKET, timeout=DEFAULT_TIMEOUT, connect=None):
        self.address = address
        self.family, self.target = parse_address(address)
        self.timeout = float(timeout)
        self._connect = connect or self._open

    def _open(self):
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.target)
        except BaseException:
            sock.close()
            raise
        return sock

    def _connect_or_explain(self):
        where = self.address
        try:
            return self._connect()
        except FileNotFoundError:
            raise SocketMissing(
                f"HAProxy runtime socket {where} does not exist: is HAProxy running, and does haproxy.cfg "
                f"declare `stats socket {self.target} level admin`?") from None
        except PermissionError:
            raise SocketPermissionDenied(
                f"no permission to open HAProxy runtime socket {where}: run as root (become: true) or as a "
                "member of the socket's group") from None
        except ConnectionRefusedError:
            raise SocketConnectionRefused(
                f"nothing accepts connections on HAProxy runtime socket {where}: HAProxy is stopped or "
                "restarting, or the address is wrong") from None
        except socket.timeout:
            raise SocketTimeout(f"HAProxy runtime socket {where} did not accept a connection within "
                                f"{self.timeout:g} s") from None
        except OSError as error:
            raise SocketUnavailable(f"cannot connect to HAProxy runtime socket {where}: {error.strerror or error}") \
                from None

    def execute(self, command):
        """Raw reply text. HAProxy closes the connection after answering, which ends the reply."""
        if "\n" in command or "\r" in command:
            raise RuntimeApiError(f"runtime API commands are one line: {command!r}")
        deadline = time.monotonic() + self.timeout
        sock = self._connect_or_explain()
        chunks = []
        try:
            sock.sendall(command.encode() + b"\n")
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(_RECV_SIZE)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            raise SocketTimeout(f"HAProxy runtime socket {self.address} did not finish answering `{command}` within "
                                f"{self.timeout:g} s") from None
        except OSError as error:
            raise SocketUnavailable(f"HAProxy runtime socket {self.address} failed during `{command}`: "
                                    f"{error.strerror or error}") from None
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", errors="replace")

    def execute_batch(self, commands):
        """Replies to several commands sent on one line (one connection, one consistent moment).

        HAProxy ends each command's output with an empty line and never emits one inside it.
        """
        for command in commands:
            if ";" in command:
                raise RuntimeApiError(f"a batched command cannot contain ';': {command!r}")
        reply = self.execute("; ".join(commands))
        parts, current = [], []
        lines = reply.split("\n")
        lines.pop()  # what follows the last newline: nothing, unless the reply was cut short
        for line in lines:
            if line:
                current.append(line + "\n")
            elif len(parts) < len(commands):
                parts.append("".join(current))
                current = []
        if len(parts) != len(commands):
            raise CommandError(f"HAProxy answered {len(parts)} of {len(commands)} commands in "
                               f"`{'; '.join(commands)}`: {reply.strip()[:200]}", "; ".join(commands), reply)
        return parts

    def command(self, command):
        """Runs a command that answers nothing on success; any text back is HAProxy's error."""
        reply = self.execute(command)
        classify_reply(command, reply, self.address)
        if reply.strip():
            raise CommandError(f"HAProxy rejected `{command}` on {self.address}: {reply.strip()}", command, reply)

    def show_info(self):
        command = "show info"
        reply = self.execute(command)
        classify_reply(command, reply, self.address)
        return parse_show_info(reply)

    def show_stat(self, backend=None):
        """Server rows of ``show stat`` (all backends, or one)."""
        reply = self.execute(SHOW_SERVER_STATS)
        classify_reply(SHOW_SERVER_STATS, reply, self.address)
        return [row for row in parse_show_stat(reply, SHOW_SERVER_STATS) if backend in (None, row.get("pxname"))]

    def show_servers_state(self, backend=None):
        command = f"show servers state {check_name('backend', backend)}" if backend else "show servers state"
        reply = self.execute(command)
        classify_reply(command, reply, self.address)
        return parse_servers_state(reply, command)

    def servers(self, backend=None, fold=True):
        """Every server (of one backend), read in one exchange: a list of ServerView.

        With ``fold``, each instance is one row (see fold_instances) and the instances' own
        backends are left out, unless ``backend`` names one of them.
        """
        commands = ["show servers state", SHOW_SERVER_STATS]
        state_reply, stat_reply = self.execute_batch(commands)
        for command, reply in zip(commands, (state_reply, stat_reply)):
            classify_reply(command, reply, self.address)
        views = merge_server_views(parse_servers_state(state_reply, commands[0]),
                                   parse_show_stat(stat_reply, commands[1]))
        shown = fold_instances(views) if fold else views
        if backend is None:
            return shown
        selected = [view for view in shown if view.backend == backend]
        if not selected:
            selected = [view for view in views if view.backend == backend]
        if not selected:
            names = sorted({view.backend for view in shown})
            raise UnknownBackend(f"HAProxy on {self.address} has no backend '{check_name('backend', backend)}'; "
                                 f"its backends are: {', '.join(names) or 'none'}")
        return selected

    def backend_names(self):
        return sorted({view.backend for view in self.servers()})

    def servers_named(self, backend, names):
        """{name: ServerView} of the servers ``names`` of ``backend``, from one read."""
        for name in names:
            check_name("server", name)
        views = self.servers(backend)
        by_name = {view.server: view for view in views}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise UnknownServer(f"backend '{backend}' on {self.address} has no server "
                                f"{', '.join(repr(name) for name in missing)}; its servers are: "
                                f"{', '.join(view.server for view in views) or 'none'}")
        return {name: by_name[name] for name in names}

    def streams(self):
        """{(backend, server): StreamCounts} of every stream HAProxy holds now (``show sess all``)."""
        reply = self.execute(SHOW_ALL_STREAMS)
        classify_reply(SHOW_ALL_STREAMS, reply, self.address)
        return parse_streams(reply)

    def send(self, commands):
        """Runs commands that answer nothing on success, many per exchange; returns how many HAProxy
        accepted. Raises CommandError naming every rejected one (the others still took effect)."""
        accepted, rejected = 0, []
        for line in command_lines(commands):
            replies = self.execute_batch(line) if len(line) > 1 else [self.execute(line[0])]
            for command, reply in zip(line, replies):
                try:
                    classify_reply(command, reply, self.address)
                except CommandError as error:
                    rejected.append(error)
                    continue
                if reply.strip():
                    rejected.append(CommandError(f"HAProxy rejected `{command}` on {self.address}: {reply.strip()}",
                                                 command, reply))
                else:
                    accepted += 1
        if rejected:
            error = rejected[0] if len(rejected) == 1 else CommandError(
                "; ".join(str(item) for item in rejected), rejected[0].command, rejected[0].reply)
            error.accepted = accepted
            raise error
        return accepted

    def server(self, backend, server):
        check_name("server", server)
        views = self.servers(backend)
        for view in views:
            if view.server == server:
                return view
        raise UnknownServer(f"backend '{backend}' on {self.address} has no server '{server}'; its servers are: "
                            f"{', '.join(view.server for view in views) or 'none'}")

    def set_server_state(self, backend, server, state):
        if state not in ADMIN_STATES:
            raise RuntimeApiError(f"server state must be one of {', '.join(ADMIN_STATES)}, not {state!r}")
        self.command(state_command(backend, server, state))

    def set_server_weight(self, backend, server, weight):
        self.command(weight_command(backend, server, weight))


def state_command(backend, server, state):
    return f"set server {check_name('backend', backend)}/{check_name('server', server)} state {state}"


def weight_command(backend, server, weight):
    return f"set server {check_name('backend', backend)}/{check_name('server', server)} weight {int(weight)}"


def command_lines(commands):
    """``commands`` grouped into lists that fit one command line each (joined by ``; ``)."""
    lines, current, length = [], [], 0
    for command in commands:
        if current and length + len(command) + 2 > MAX_COMMAND_LINE:
            lines.append(current)
            current, length = [], 0
        current.append(command)
        length += len(command) + 2
    if current:
        lines.append(current)
    return lines


# --- parsers ------------------------------------------------------------------

def parse_show_info(reply):
    info = {}
    for line in reply.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def parse_show_stat(reply, command="show stat"):
    """Server rows (type 2) of ``show stat`` CSV as dicts of strings keyed by the header's names."""
    lines = reply.splitlines()
    if not lines or not lines[0].startswith("# pxname,"):
        raise CommandError(f"unexpected reply to `{command}`: {reply.strip()[:200] or '(empty)'}", command, reply)
    header = next(csv.reader([lines[0][2:]]))
    rows = []
    for values in csv.reader(line for line in lines[1:] if line):
        row = dict(zip(header, values))
        if row.get("type") == "2":
            rows.append(row)
    return rows


def parse_servers_state(reply, command="show servers state"):
    """Records of ``show servers state``: format version on line 1, '#' header, space separated fields."""
    lines = [line for line in reply.splitlines() if line.strip()]
    if not lines or not lines[0].strip().isdigit() or len(lines) < 2 or not lines[1].startswith("#"):
        raise CommandError(f"unexpected reply to `{command}`: {reply.strip()[:200] or '(empty)'}", command, reply)
    header = lines[1][1:].split()
    return [dict(zip(header, line.split())) for line in lines[2:] if not line.startswith("#")]


@dataclass(frozen=True)
class StreamCounts:
    """A server's streams by kind: HTTP requests (in flight or waiting for their answer) and tunnels
    (WebSockets: upgraded connections HAProxy only relays, which end when either side closes)."""

    requests: int = 0
    tunnels: int = 0

    def __add__(self, other):
        return StreamCounts(self.requests + other.requests, self.tunnels + other.tunnels)


_STREAM_START = re.compile(r"^0x[0-9a-fA-F]+: \[", re.M)
_STREAM_BACKEND = re.compile(r"^\s*backend=(\S+) \(", re.M)
_STREAM_SERVER = re.compile(r"^\s*server=(\S+) \(", re.M)
_STREAM_HTTP_STATE = re.compile(r"\breq\.st=(\S+) rsp\.st=(\S+)")


def parse_streams(reply, command=SHOW_ALL_STREAMS):
    """{(backend, server): StreamCounts} from ``show sess all`` (same layout in 2.6 and 3.0).

    A stream is a tunnel when its HTTP transaction switched to MSG_TUNNEL (101 Switching Protocols).
    Streams with no server (the CLI's own, a request still being parsed) are left out.
    """
    starts = [match.start() for match in _STREAM_START.finditer(reply)]
    if not starts and reply.strip():
        raise CommandError(f"unexpected reply to `{command}`: {reply.strip()[:200]}", command, reply)
    counts = {}
    for start, end in zip(starts, starts[1:] + [len(reply)]):
        block = reply[start:end]
        backend, server = _STREAM_BACKEND.search(block), _STREAM_SERVER.search(block)
        if not backend or not server or server.group(1).startswith("<"):
            continue
        state = _STREAM_HTTP_STATE.search(block)
        tunnel = bool(state) and "MSG_TUNNEL" in state.groups()
        key = (backend.group(1), server.group(1))
        counts[key] = counts.get(key, StreamCounts()) + StreamCounts(0 if tunnel else 1, 1 if tunnel else 0)
    return counts


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


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


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
        mask = _int(record.get("srv_admin_state"), 0)
        check_state = _int(record.get("srv_check_state"), 0)
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
            operational_state=OPERATIONAL_STATES.get(_int(record.get("srv_op_state")), "unknown"),
            status=row.get("status") or None,
            check_status=check_status,
            check_description=row.get("check_desc") or None,
            check_result=CHECK_RESULTS.get(_int(record.get("srv_check_result")), "unknown"),
            checks_enabled=bool(check_state & CHECK_ENABLED) and not check_state & CHECK_PAUSED,
            check_health=_int(record.get("srv_check_health")),
            check_rise=_int(row.get("check_rise")),
            check_fall=_int(row.get("check_fall")),
            weight=_int(record.get("srv_uweight")),
            initial_weight=_int(record.get("srv_iweight")),
            scur=_int(row.get("scur")),
            qcur=_int(row.get("qcur")),
            stot=_int(row.get("stot")),
            lastsess=_int(row.get("lastsess")),
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

def target_weight(spec, initial_weight):
    """Absolute weight HAProxy will apply for ``spec`` (int, "NN" or "NN%" of the configured weight).

    Same arithmetic as HAProxy's server_parse_weight_change_request(): relative weights are
    truncated and capped at 256.
    """
    match = _WEIGHT.fullmatch(str(spec))
    if not match:
        raise RuntimeApiError(f"weight must be a number 0..{MAX_WEIGHT} or a percentage like 50%, not {spec!r}")
    value, relative = int(match.group(1)), match.group(2) == "%"
    if relative:
        if initial_weight is None:
            raise RuntimeApiError("a relative weight needs the server's configured weight; HAProxy did not report it")
        return min(MAX_WEIGHT, initial_weight * min(value, 25600) // 100)
    if value > MAX_WEIGHT:
        raise RuntimeApiError(f"weight {value} is above HAProxy's maximum of {MAX_WEIGHT}")
    return value


@dataclass(frozen=True)
class Change:
    """What it takes to bring one server to the wanted state and weight."""

    commands: tuple
    before: dict
    after: dict

    @property
    def changed(self):
        return bool(self.commands)


def plan_change(view, state=None, weight=None):
    """Commands (weight first, so a server coming back to ready gets its new share at once)."""
    if state is not None and state not in ADMIN_STATES:
        raise RuntimeApiError(f"server state must be one of {', '.join(ADMIN_STATES)}, not {state!r}")
    before = {"admin_state": view.admin_state, "weight": view.weight}
    after = dict(before)
    commands = []
    if weight is not None:
        wanted = target_weight(weight, view.initial_weight)
        if wanted != view.weight:
            placed = view.placement or view
            commands.append(weight_command(placed.backend, placed.server, wanted))
            after["weight"] = wanted
    if state is not None:
        if view.is_instance:
            commands.extend(instance_state_commands(view, state))
        elif state != view.admin_state:
            commands.append(state_command(view.backend, view.server, state))
        after["admin_state"] = state
    return Change(tuple(commands), before, after)


# State of each of an instance's two servers, per instance state. None: left as it is (in maint,
# the placement server inherits maint anyway, and keeps its drain for when maint ends).
_PLACEMENT_STATE = {"ready": "ready", "drain": "drain", "maint": None}
_OWN_STATE = {"ready": "ready", "drain": "ready", "maint": "maint"}


def instance_state_commands(view, state):
    """Drain only ever on the placement server: the own backend's server must keep serving the
    instance's sessions while it drains. Maint on the own server: its sessions then go elsewhere."""
    commands = []
    placement, own = view.placement, view.own
    wanted = _PLACEMENT_STATE[state]
    if wanted and admin_state(placement.admin_mask & ~TRACKING_MASK) != wanted:
        commands.append(state_command(placement.backend, placement.server, wanted))
    if own.admin_state != _OWN_STATE[state]:
        commands.append(state_command(own.backend, own.server, _OWN_STATE[state]))
    return commands


def unreached(view, change):
    """Why ``view`` (read after running ``change``) is not what was asked, or None if it is."""
    problems = []
    if view.admin_state != change.after["admin_state"]:
        problems.append(
            f"it is still in {view.admin_state} ({explain_admin_flags(view.admin_mask)}), which "
            f"`set server ... state {change.after['admin_state']}` cannot override")
    if view.weight != change.after["weight"]:
        problems.append(f"its weight is {view.weight}, not {change.after['weight']}")
    if not problems:
        return None
    return f"{view.backend}/{view.server}: " + " and ".join(problems)


# --- waiting ----------------------------------------------------------------------

REACHED, WAITING, HOPELESS = "reached", "waiting", "hopeless"
WAIT_CONDITIONS = ("drained", "quiet", "up")


def drained(view, quiet):
    """No session, no queue, and no new session for ``quiet`` seconds (HAProxy's own lastsess clock).

    Every connection counts, WebSockets too: with ``quiet`` 0 this is "no user left at all"."""
    if view.admin_state == "ready":
        return HOPELESS, "it is in ready state, so it keeps receiving new sessions; set state drain or maint first"
    if view.scur or view.qcur:
        return WAITING, f"{view.scur} session(s) active and {view.qcur} queued"
    if view.lastsess is not None and 0 <= view.lastsess < quiet:
        return WAITING, f"last session assigned {view.lastsess} s ago, waiting for {quiet} s of quiet"
    return REACHED, ("no active or queued session, none ever assigned" if view.lastsess in (None, -1) else
                     f"no active or queued session, last one assigned {view.lastsess} s ago")


def quiet_requests(view, quiet, streams=None):
    """No HTTP request in flight or queued, and none started for ``quiet`` seconds; WebSocket tunnels
    are not waited for (only the instance's restart ends them; Wt's client then reconnects).

    ``streams`` (StreamCounts) tells tunnels from requests; it is only needed while ``scur`` > 0.
    """
    if view.admin_state == "ready":
        return HOPELESS, "it is in ready state, so it keeps receiving new sessions; set state drain or maint first"
    if view.qcur:
        return WAITING, f"{view.qcur} request(s) queued"
    tunnels = 0
    if view.scur:
        if streams is None:
            return WAITING, f"{view.scur} session(s) active"
        tunnels = min(streams.tunnels, view.scur)
        if view.scur > tunnels:
            return WAITING, f"{view.scur - tunnels} request(s) in flight" + (
                f" and {tunnels} WebSocket(s) open" if tunnels else "")
    open_tunnels = f"; {tunnels} WebSocket(s) open, which its restart will close" if tunnels else ""
    if view.lastsess is not None and 0 <= view.lastsess < quiet:
        return WAITING, f"last request {view.lastsess} s ago, waiting for {quiet} s of quiet{open_tunnels}"
    return REACHED, ("no request in flight or queued" + (
        f", last one {view.lastsess} s ago" if view.lastsess not in (None, -1) else "") + open_tunnels)


def up(view):
    """Running and, when checked, at full check health: a fresh health check passed, not just leaving maint."""
    if view.admin_state == "maint":
        return HOPELESS, "it is in maint, where HAProxy does not run health checks; set state ready or drain"
    if view.operational_state != "running":
        detail = f", last check {view.check_status} ({view.check_description})" if view.check_status else ""
        return WAITING, f"status {view.status}{detail}"
    if view.checks_enabled and view.check_rise and view.check_fall:
        full = view.check_rise + view.check_fall - 1
        if view.check_result != "passed" or (view.check_health is not None and view.check_health < full):
            return WAITING, f"status {view.status}: health {view.check_health}/{full}, last check {view.check_status}"
    return REACHED, f"status {view.status}" + (f", last check {view.check_status}" if view.check_status else "")


def still_up(view):
    """Whether HAProxy still routes to a server that was up: running and not in maint. A check that
    is running, or one failed check ("UP 1/2"), does not take a server down; ``fall`` of them do."""
    if view.admin_state == "maint":
        return HOPELESS, "it was put in maint"
    if view.operational_state != "running":
        detail = f", last check {view.check_status} ({view.check_description})" if view.check_status else ""
        return WAITING, f"status {view.status}{detail}"
    return REACHED, f"status {view.status}"


def keep_check(condition, quiet):
    """What must stay true while a reached condition is held (``hold``)."""
    if condition == "up":
        return lambda view, streams=None: still_up(view)
    return wait_check(condition, quiet)


def wait_check(condition, quiet):
    """The check function a ``wait`` option value needs: ``check(view, streams=None)``."""
    if condition == "drained":
        return lambda view, streams=None: drained(view, quiet)
    if condition == "quiet":
        return lambda view, streams=None: quiet_requests(view, quiet, streams)
    if condition == "up":
        return lambda view, streams=None: up(view)
    raise RuntimeApiError(f"can wait for {', '.join(WAIT_CONDITIONS[:-1])} or {WAIT_CONDITIONS[-1]}, not {condition!r}")


def wait_conflict(condition, admin_state):
    """Why waiting for ``condition`` in ``admin_state`` could never succeed, or None."""
    if condition in ("drained", "quiet") and admin_state == "ready":
        return (f"is to stay in ready state, where it keeps receiving new sessions, so it can never "
                f"{'drain' if condition == 'drained' else 'be quiet'}: set state=drain (or maint) with wait={condition}")
    if condition == "up" and admin_state == "maint":
        return ("is to stay in maint, where HAProxy runs no health check, so it can never be seen up: "
                "set state=ready (or drain) with wait=up")
    return None


@dataclass(frozen=True)
class WaitOutcome:
    condition: str
    reached: bool
    reason: str
    elapsed: float
    polls: int
    observed: dict | None

    def as_dict(self):
        return asdict(self)


_TRANSIENT = (SocketConnectionRefused, SocketMissing, SocketTimeout)


def wait_for_servers(condition, poll, names, check, timeout, interval, hold=0.0, keep=None, clock=time.monotonic,
                     sleep=time.sleep):
    """Waits for ``check`` on every server of ``names`` at once: {name: WaitOutcome}.

    ``poll(names)`` reads the servers still waited for, in one exchange: {name: (ServerView,
    StreamCounts or None)}. A server is done when reached (and, with ``hold``, still ``keep`` (by
    default ``check``) ``hold`` seconds later: a relapse meanwhile ends its wait unreached), hopeless,
    or at ``timeout``.
    A socket that is briefly unavailable (HAProxy reloading) is polled again; the last error becomes
    the reason if it never answers again. Any other runtime API error ends every wait.
    """
    start = clock()
    waiting = list(names)
    outcomes, observed, reasons, since, polls = {}, {}, {}, {}, 0
    while waiting:
        polls += 1
        error, error_verdict, verdicts = None, None, {}
        try:
            read = poll(list(waiting))
        except _TRANSIENT as failure:
            error, error_verdict = str(failure), WAITING
        except RuntimeApiError as failure:
            error, error_verdict = str(failure), HOPELESS
        now = clock()
        elapsed = now - start
        for name in waiting:
            if error is not None:
                verdicts[name] = (error_verdict, error)
                continue
            view, streams = read[name]
            observed[name] = view.as_dict()
            verdicts[name] = (keep or check)(view, streams) if name in since else check(view, streams)
        for name, (verdict, reason) in verdicts.items():
            reasons[name] = reason
            if verdict == REACHED:
                held = now - since.setdefault(name, now)
                if held >= hold:
                    text = reason + (f", for {hold:g} s" if hold else "")
                    outcomes[name] = WaitOutcome(condition, True, text, round(elapsed, 3), polls, observed.get(name))
                continue
            if name in since:
                outcomes[name] = WaitOutcome(condition, False, f"was {condition} for {now - since[name]:.1f} s, then: "
                                             f"{reason}", round(elapsed, 3), polls, observed.get(name))
            elif verdict == HOPELESS:
                outcomes[name] = WaitOutcome(condition, False, f"will never be {condition}: {reason}",
                                             round(elapsed, 3), polls, observed.get(name))
        waiting = [name for name in waiting if name not in outcomes]
        if not waiting:
            break
        if elapsed >= timeout:
            for name in waiting:
                outcomes[name] = WaitOutcome(condition, False, f"timed out after {timeout:g} s: {reasons[name]}",
                                             round(elapsed, 3), polls, observed.get(name))
            break
        sleep(max(0.0, min(interval, timeout - elapsed)))
    return {name: outcomes[name] for name in names}


def wait_for(condition, poll, check, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """wait_for_servers for one server: ``poll()`` returns its ServerView, ``check(view)`` decides."""
    outcomes = wait_for_servers(condition, lambda names: {"server": (poll(), None)}, ["server"],
                                lambda view, streams: check(view), timeout, interval, clock=clock, sleep=sleep)
    return outcomes["server"]


def server_poller(client, backend, condition):
    """``poll(names)`` for wait_for_servers: one read of the servers, plus the streams when telling
    requests from WebSockets matters (waiting for quiet while some server has sessions)."""
    def poll(names):
        views = client.servers_named(backend, names)
        streams = None
        if condition == "quiet" and any(view.scur for view in views.values()):
            streams = client.streams()
        return {name: (view, streams_of(view, streams) if streams is not None else None)
                for name, view in views.items()}
    return poll
