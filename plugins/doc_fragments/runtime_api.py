# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the modules that talk to HAProxy's runtime API."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  socket:
    description:
      - The runtime API address. An absolute unix socket path, or C(tcp:HOST:PORT)
        (C(ipv4@HOST:PORT) and C(ipv6@[HOST]:PORT) are accepted too).
      - Reading works at any socket level; changing a server needs C(level admin), at lower levels
        HAProxy answers C(Permission denied) to C(set server).
    type: str
    default: /run/haproxy/admin.sock
  socket_timeout:
    description: Seconds allowed for one runtime API command (connect, send, read the whole reply).
    type: float
    default: 10
"""
