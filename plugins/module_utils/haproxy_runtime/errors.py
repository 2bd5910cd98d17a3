# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What can go wrong talking to HAProxy's runtime API, and how HAProxy's error replies are recognised."""

from __future__ import annotations

# Replies HAProxy gives instead of output (same words in 2.6 and 3.0, see the fixtures).
_UNKNOWN_BACKEND_REPLIES = ("No such backend.", "Can't find backend.", "No such proxy.")
_UNKNOWN_SERVER_REPLIES = ("No such server.",)
_PERMISSION_DENIED_REPLIES = ("Permission denied",)


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
