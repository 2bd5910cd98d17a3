"""What the haproxy_runtime tests share: captured replies read as views, and stand-ins for
HAProxy's socket and for the clock (nothing here runs HAProxy)."""

import socket
import threading
from pathlib import Path

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import parsing, reading, servers

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "haproxy"
VERSIONS = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir() and path.name[0].isdigit())
INSTANCES = ["app1-9090", "app1-9091", "app2-9090", "app2-9091"]


def raw_views(captured, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return servers.merge_server_views(parsing.parse_servers_state(captured(state)),
                                      parsing.parse_show_stat(captured(stat)))


def raw_view(captured, backend, server, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return next(view for view in raw_views(captured, state, stat) if (view.backend, view.server) == (backend, server))


def views(captured, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    """The rows the modules see: one per instance (backend wt) plus static's plain server."""
    return {view.server: view for view in servers.fold_instances(raw_views(captured, state, stat))}


def view_of(captured, server="app1-9090", state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return views(captured, state, stat)[server]


class ReplaySocket:
    """Stands in for a connected socket: records what is sent, replies with ``reply`` then EOF."""

    def __init__(self, reply):
        self.reply = reply.encode()
        self.sent = b""

    def settimeout(self, value):
        pass

    def sendall(self, data):
        self.sent += data

    def recv(self, size):
        chunk, self.reply = self.reply[:size], self.reply[size:]
        return chunk

    def close(self):
        pass


class FakeHAProxy:
    """A unix or TCP listener answering each command line from a dict, the way HAProxy does it."""

    def __init__(self, replies, family=socket.AF_UNIX, path=None, silent=False):
        self.replies = replies
        self.received = []
        self.silent = silent
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.listener.bind(path)
            self.address = path
        else:
            self.listener.bind(("127.0.0.1", 0))
            self.address = f"tcp:127.0.0.1:{self.listener.getsockname()[1]}"
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, dummy = self.listener.accept()
            except OSError:
                return
            with connection:
                line = b""
                while not line.endswith(b"\n"):
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    line += chunk
                line = line.decode().strip()
                self.received.append(line)
                if self.silent:
                    connection.recv(1)  # hold the connection open until the client gives up
                    continue
                unknown = "Unknown command, but maybe one of the following ones\n\n"
                reply = "".join(self.replies.get(command.strip(), unknown) for command in line.split(";"))
                for start in range(0, len(reply), 1000):  # several segments, as a long `show stat` arrives
                    connection.sendall(reply[start:start + 1000].encode())

    def close(self):
        self.listener.close()


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def sequence(*items):
    items = list(items)

    def poll():
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return poll


def many(*rounds):
    """poll(names) replaying one {name: view} per call (the last one forever)."""
    rounds = list(rounds)

    def poll(names):
        item = rounds.pop(0) if len(rounds) > 1 else rounds[0]
        if isinstance(item, Exception):
            raise item
        return {name: (item[name], None) for name in names}

    return poll


def instance_replies(captured, state="show_servers_state.txt", stat="show_stat_servers.txt", ids=True):
    """What HAProxy answers to the commands that read one instance (reading.instance_commands),
    cut from whole-table replies the way HAProxy selects them: as if the captured configuration
    gave backend wt and its servers the role's ids (``ids``), or as it is (no ids: the placement
    server's row is not found by id)."""
    state_lines = [line for line in captured(state).splitlines() if line]
    stat_lines = [line for line in captured(stat).splitlines() if line]
    records = parsing.parse_servers_state(captured(state))

    def table(head, lines):
        return "\n".join(head + lines) + "\n\n"

    replies = {}
    for name in INSTANCES:
        own = f"wt.{name}"
        placement = next(record for record in records if (record["be_name"], record["srv_name"]) == ("wt", name))
        commands = reading.instance_commands(name)
        replies[commands[0]] = f"{placement['srv_uweight']} (initial {placement['srv_iweight']})\n\n"
        replies[commands[1]] = table(state_lines[:2], [line for line in state_lines[2:] if line.split()[1] == own])
        replies[commands[2]] = table(stat_lines[:1], [line for line in stat_lines[1:] if line.startswith(own + ",")])
        replies[commands[3]] = table(stat_lines[:1], [line for line in stat_lines[1:]
                                                      if ids and line.startswith(f"wt,{name},")])
    replies["show servers state wt"] = table(state_lines[:2], [line for line in state_lines[2:]
                                                               if line.split()[1] == "wt"])
    for command in ("get weight wt/nope", "get weight wt/gone"):
        replies[command] = "No such server.\n\n"
    return replies
