"""The routing the haproxy role renders, run in a real HAProxy on this machine.

plan.yml renders haproxy.cfg and the session map for a small fleet on loopback addresses; HAProxy
runs that configuration (only what needs the packaged service is changed: no chroot, privilege
drop or syslog, sockets and state file in a scratch directory) in front of small HTTP servers that
stand in for Wt instances and answer with their port and the X-Forwarded-For they got. States are
set the way wtstack.fleet.haproxy_server sets them (haproxy_runtime.changes.change_for), so this checks
docs/design.md's "Routing" end to end in seconds: stickiness, drain, maint, a crashed instance,
unknown sessions, and states kept across a restart with the state file.
"""

import http.client
import importlib.util
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.changes import change_for
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import RuntimeClient
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import SocketUnavailable
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.reading import read_servers
from test_plan import REPO, run_plan

LAB_PY = REPO / "tests/integration/local_haproxy.py"
NETWORK = "127.0.20."
LB = NETWORK + "1"
MAP_PATH = "/etc/haproxy/wt-sessions.map"


def _load_lab():
    spec = importlib.util.spec_from_file_location("haproxy_lab", LAB_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab_module = _load_lab()


def free_port(address):
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class Fleet:
    """HAProxy with the role's configuration, and one stand-in Wt instance per topology instance."""

    # (app host, its address, explicit prefix or None for the generated one): the seed's wt1/wt10 trap too.
    INSTANCES = (("app1", NETWORK + "2", "wt1-"), ("app1", NETWORK + "2", "wt10-"), ("app2", NETWORK + "3", None))

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port(LB)
        apps = {}
        self.backends = {}  # server name -> the stand-in instance
        self.prefixes = {}  # server name -> prefix
        for host, address, prefix in self.INSTANCES:
            port = free_port(address)
            app = apps.setdefault(host, {"ansible_host": address, "wt_instances": []})
            app["wt_instances"].append({"port": port, **({"prefix": prefix} if prefix else {})})
            self.backends[f"{host}-{port}"] = lab_module.Backend(address, port)
            self.prefixes[f"{host}-{port}"] = prefix or f"{host}-{port}-"
        inventory = workdir / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {
            "haproxy": {"hosts": {"lb1": {"ansible_host": LB, "haproxy_bind_address": LB,
                                          "haproxy_bind_port": self.port, "haproxy_check_interval": "200ms",
                                          "haproxy_timeout_server_get": "1s",
                                          "haproxy_relay_address": f"abns@wtstack-test-relay-{self.port}"}}},
            "wt": {"hosts": apps}}}}))
        plan = run_plan(inventory, workdir / "plan", "--limit", "localhost,lb1")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        rendered = workdir / "plan/lb1/etc/haproxy"
        self.socket = str(workdir / "admin.sock")
        self.state_file = workdir / "server-state"
        self.state_file.write_text("1\n")
        config = (rendered / "haproxy.cfg").read_text().replace(MAP_PATH, str(rendered / "wt-sessions.map"))
        config = re.sub(r"(?m)^    (log /dev/log|chroot|user|group) .*\n", "", config)
        config = re.sub(r"(?m)^    stats socket .*$", f"    stats socket {self.socket} mode 600 level admin", config)
        config = re.sub(r"(?m)^    server-state-file .*$", f"    server-state-file {self.state_file}", config)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(config)
        self.process = None

    def start(self, wait_for_up=True):
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
        if not haproxy:
            pytest.fail("haproxy is not installed on this machine; .ci/run installs it (apt-get install haproxy)")
        with open(self.workdir / "haproxy.log", "a") as log:
            self.process = subprocess.Popen(lab_module.die_with_parent([haproxy, "-db", "-f", str(self.config)]),
                                            stdout=log, stderr=subprocess.STDOUT)
        self.client = RuntimeClient(self.socket, timeout=5)
        if wait_for_up:
            self.wait(lambda views: all(view.status == "UP" for view in views), "every instance UP")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart_with_saved_states(self):
        """What the role's reload does: save `show servers state` to the state file, and the next
        process loads it (load-server-state-from-file global)."""
        self.state_file.write_text(self.client.execute("show servers state"))
        self.stop()
        self.start(wait_for_up=False)

    def instances_view(self):
        return {view.server: view for view in read_servers(self.client, "wt")}

    def wait(self, condition, what, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            try:
                views = list(self.instances_view().values())
                if condition(views):
                    return views
            except SocketUnavailable:
                views = None
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout} s: {views}\n"
                                     f"{(self.workdir / 'haproxy.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def set_state(self, server, state):
        for command in change_for(self.instances_view()[server], state=state).commands:
            self.client.command(command)

    def get(self, wtd=None, path="/"):
        """(status, port of the instance that answered, the X-Forwarded-For it got)."""
        connection = http.client.HTTPConnection(LB, self.port, timeout=10)
        connection.request("GET", f"{path}?wtd={wtd}" if wtd else path)
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
        if response.status != 200:
            return response.status, None, None
        port, dummy, forwarded = body.split()
        return response.status, int(port), forwarded.removeprefix("x-forwarded-for=")

    def session(self, server):
        return self.prefixes[server] + "AbCdEfGh01234567"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(tmp_path_factory.mktemp("routing"))
    fleet.start()
    yield fleet
    fleet.stop()
    for backend in fleet.backends.values():
        backend.shutdown()
        backend.server_close()


@pytest.fixture
def routing(fleet):
    """The fleet with every instance ready and UP again."""
    for server in fleet.backends:
        fleet.set_state(server, "ready")
    fleet.wait(lambda views: all(v.status == "UP" and v.admin_state == "ready" for v in views), "all ready and UP")
    return fleet


def port_of(server):
    return int(server.rsplit("-", 1)[1])


def test_the_map_names_each_instances_own_backend(fleet):
    rendered = (fleet.workdir / "plan/lb1/etc/haproxy/wt-sessions.map").read_text()
    lines = [line.split() for line in rendered.splitlines() if line and not line.startswith("#")]
    assert sorted(lines) == sorted([prefix, f"wt.{server}"] for server, prefix in fleet.prefixes.items())


def test_sessions_stick_and_new_sessions_spread(routing):
    for server in routing.backends:
        for dummy in range(3):
            assert routing.get(routing.session(server))[:2] == (200, port_of(server))
    placed = {routing.get()[1] for dummy in range(6)}
    assert placed == {port_of(server) for server in routing.backends}


def test_an_unknown_session_is_placed_like_a_new_one(routing):
    status, port, dummy = routing.get("wt2-AbCdEfGh01234567")  # no instance has the prefix wt2-
    assert status == 200 and port in {port_of(server) for server in routing.backends}


def test_drain_stops_new_sessions_only(routing):
    drained = next(iter(routing.backends))
    routing.set_state(drained, "drain")
    assert routing.instances_view()[drained].admin_state == "drain"
    assert port_of(drained) not in {routing.get()[1] for dummy in range(9)}
    assert routing.get(routing.session(drained))[:2] == (200, port_of(drained))


def test_maint_sends_sessions_to_another_instance_through_the_relay(routing):
    server = next(iter(routing.backends))
    routing.set_state(server, "drain")
    routing.set_state(server, "maint")
    status, port, forwarded = routing.get(routing.session(server))
    assert status == 200 and port != port_of(server)
    assert forwarded == "127.0.0.1"  # one X-Forwarded-For, the client's, though the request passed two frontends
    assert routing.get()[2] == "127.0.0.1"
    routing.set_state(server, "drain")
    routing.wait(lambda views: any(v.server == server and v.status == "DRAIN" for v in views), "back in drain")
    assert routing.get(routing.session(server))[:2] == (200, port_of(server))


def test_a_crashed_instance_costs_no_request(routing):
    """Nothing listens any more, and no health check has noticed yet: the first request of its
    session marks it down (observe layer4), and its retry goes through the relay to another one."""
    server = list(routing.backends)[1]
    address, port = routing.backends[server].server_address
    routing.backends[server].shutdown()
    routing.backends[server].server_close()
    try:
        started = time.monotonic()
        status, answered_by, dummy = routing.get(routing.session(server))
        assert status == 200 and answered_by != port
        elapsed = time.monotonic() - started
        print(f"\nfirst request of the crashed instance answered by another in {elapsed:.2f} s")
        assert elapsed < 2.0, "longer than one retry delay (1 s)"
        assert routing.instances_view()[server].operational_state == "stopped"
        assert all(routing.get()[1] != port for dummy in range(6))
    finally:
        routing.backends[server] = lab_module.Backend(address, port)
    routing.wait(lambda views: all(v.status == "UP" for v in views), "UP again after the restart")
    assert routing.get(routing.session(server))[:2] == (200, port)


def test_admin_states_survive_a_restart_with_the_state_file(routing):
    drained, maint, ready = routing.backends
    routing.set_state(drained, "drain")
    routing.set_state(maint, "maint")
    routing.restart_with_saved_states()
    views = routing.wait(lambda views: len(views) == 3, "answering")
    states = {view.server: view.admin_state for view in views}
    assert states == {drained: "drain", maint: "maint", ready: "ready"}
    assert routing.get(routing.session(drained))[:2] == (200, port_of(drained))
    assert routing.get(routing.session(maint))[1] != port_of(maint)


def community_general_haproxy(fleet, server, state):
    """What community.general.haproxy sends for `host: <server>` without `backend`: the same command
    on every backend that has a server of that name (its discover_all_backends + get_state_for)."""
    command = {"drain": "set server {}/{} state drain", "disabled": "disable server {}/{}",
               "enabled": "enable server {}/{}"}[state]
    backends = [view.backend for view in read_servers(fleet.client, fold=False) if view.server == server]
    assert backends == [f"wt.{server}", "wt"]
    for backend in backends:
        fleet.client.command(command.format(backend, server))


def test_community_general_haproxy_without_a_backend_does_what_its_states_say(routing):
    server = next(iter(routing.backends))
    community_general_haproxy(routing, server, "drain")
    # Draining the instance's own server too is harmless: its one use-server rule takes a drained server.
    assert routing.instances_view()[server].admin_state == "drain"
    assert routing.get(routing.session(server))[:2] == (200, port_of(server))
    assert port_of(server) not in {routing.get()[1] for dummy in range(9)}
    community_general_haproxy(routing, server, "disabled")
    assert routing.instances_view()[server].admin_state == "maint"
    status, port, dummy = routing.get(routing.session(server))
    assert status == 200 and port != port_of(server)
    community_general_haproxy(routing, server, "enabled")
    routing.wait(lambda views: all(v.status == "UP" and v.admin_state == "ready" for v in views), "enabled again")
    assert routing.get(routing.session(server))[:2] == (200, port_of(server))


def test_a_get_left_unanswered_is_sent_again(routing):
    """Wt very rarely reads a request and never answers it; a GET gets haproxy_timeout_server_get
    (1 s here) and is then sent again, to the same instance."""
    server = list(routing.backends)[2]
    routing.backends[server].hang_next = True
    started = time.monotonic()
    status, port, dummy = routing.get(routing.session(server), path="/hang-once")
    elapsed = time.monotonic() - started
    print(f"\nunanswered GET answered on its retry after {elapsed:.2f} s")
    assert (status, port) == (200, port_of(server)) and 1.0 <= elapsed < 3.0
    assert not routing.backends[server].hang_next
