# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The numeric ids haproxy.cfg gives backend ``wt`` and its placement servers (``id``).

``show stat <proxy> <type> <server id>`` is the one runtime API command that returns a single
server's statistics, and it takes ids: given a name, HAProxy looks it up among every proxy and,
where a frontend and a backend share it (our ``wt``), picks the frontend. So the placement backend
gets a fixed id, and each placement server an id computed from its name, which both the template
(through the wtstack.fleet.haproxy_ids filter) and the runtime modules compute the same way. Two
names whose ids collide are told apart by probing (the later in name order takes the next free
id); the modules check the name in the row they get, so such a server is read the long way.
"""

from __future__ import annotations

import zlib

PLACEMENT_BACKEND_ID = 1000000
_MAX_ID = 0x7FFFFFFF  # HAProxy's ids are positive ints


def placement_server_id(name):
    """The id a placement server of this name is given when no other name took it first."""
    return zlib.crc32(name.encode()) % _MAX_ID + 1


def placement_server_ids(names):
    """{name: id} for the placement servers ``names``: unique, each its own placement_server_id()
    unless an earlier name (in sorted order) took it."""
    taken, ids = set(), {}
    for name in sorted(set(names)):
        server_id = placement_server_id(name)
        while server_id in taken:
            server_id = server_id % _MAX_ID + 1
        taken.add(server_id)
        ids[name] = server_id
    return ids
