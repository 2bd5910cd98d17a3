# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of the runtime API's replies, each to plain data; no socket here.

``show stat`` columns differ between versions, so rows are read by the header's names, never by
position. Replies captured from real HAProxy 2.6 and 3.0 (tests/unit/fixtures/haproxy/) test them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import CommandError

# Every stream with its backend, server and HTTP state: the only view that tells a WebSocket (a
# tunnel, which only the instance's restart ends) from a request in flight.
SHOW_ALL_STREAMS = "show sess all"


def to_int(value, default=None):
    """An integer field of a reply, or ``default`` where HAProxy left it empty (or wrote ``-``)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


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


_WEIGHT_REPLY = re.compile(r"^(\d+) \(initial (\d+)\)$")


def parse_weight(reply, command="get weight"):
    """(weight, initial weight) from ``get weight`` (``100 (initial 100)``, the same in 2.6 and 3.0)."""
    match = _WEIGHT_REPLY.match(reply.strip())
    if not match:
        raise CommandError(f"unexpected reply to `{command}`: {reply.strip()[:200] or '(empty)'}", command, reply)
    return int(match.group(1)), int(match.group(2))
