# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime API's client: one connection per exchange, one or many commands on its line.

community.docker keeps its client and transport (module_utils/_api/) apart from what its modules
decide (module_utils/module_container/); so does this package: here only addresses, connections,
command lines and replies; what they mean is parsing.py's, servers.py's and reading.py's business.
"""

from __future__ import annotations

import re
import socket
import time

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import (
    CommandError,
    RuntimeApiError,
    SocketConnectionRefused,
    SocketMissing,
    SocketPermissionDenied,
    SocketTimeout,
    SocketUnavailable,
    classify_reply,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import (
    SHOW_ALL_STREAMS,
    parse_show_info,
    parse_streams,
)

# The haproxy role's `stats socket` (roles/haproxy/vars/main.yml haproxy_stats_socket_path): the one
# Python home of this path; documentation and role variables state it as their default.
DEFAULT_SOCKET = "/run/haproxy/admin.sock"
DEFAULT_TIMEOUT = 10.0
_RECV_SIZE = 65536
# HAProxy reads a command line into one buffer (tune.bufsize, 16 kB by default): batches of
# commands are sent in lines well below it.
MAX_COMMAND_LINE = 8000

# HAProxy identifiers: names we splice into commands must not smuggle a `;` or a newline in.
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


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
        f"({DEFAULT_SOCKET}) or tcp:HOST:PORT")


def check_name(kind, name):
    """Backend and server names go into command lines: refuse anything HAProxy would not name a proxy."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuntimeApiError(f"{kind} name {name!r} is not a HAProxy identifier (letters, digits, '-', '_', '.', ':')")
    return name


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

    def exchange(self, commands):
        """Each command's raw reply, as few exchanges as HAProxy's line length allows (usually one)."""
        replies = []
        for line in command_lines(commands):
            replies += self.execute_batch(line) if len(line) > 1 else [self.execute(line[0])]
        return replies

    def query(self, commands):
        """Replies to commands that read (see exchange); an error reply to any of them raises its
        CommandError."""
        replies = self.exchange(commands)
        for command, reply in zip(commands, replies):
            classify_reply(command, reply, self.address)
        return replies


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
