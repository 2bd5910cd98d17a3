"""Restarting a host's instances at once and waiting for their health URLs, without systemd."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import instance_restart as ir

INSTANCES = [{"server": "app1-9090", "port": 9090, "address": "10.0.0.1", "unit": "wt@9090.service"},
             {"server": "app1-9092", "port": 9092, "address": "10.0.0.1", "unit": "wt@9092.service"}]
SHOW = """Id=wt@9092.service
ActiveState=activating
SubState=auto-restart
Result=exit-code
ExecMainStatus=1
NRestarts=3
"""


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Host:
    """Runs the commands the restart gives, as systemctl and journalctl would answer them."""

    def __init__(self, show=SHOW, restart_rc=0):
        self.commands = []
        self.show, self.restart_rc = show, restart_rc

    def __call__(self, argv):
        self.commands.append(argv)
        if argv[:2] == ["systemctl", "restart"]:
            return self.restart_rc, "", "Job for wt@9092.service failed.\n" if self.restart_rc else ""
        if argv[:2] == ["systemctl", "reset-failed"]:
            return 0, "", ""
        if argv[:2] == ["systemctl", "show"]:
            return 0, self.show, ""
        if argv[0] == "journalctl":
            return 0, ("Traceback (most recent call last):\nImportError: no module named wt\n"
                       '[2026-Nov-29 13:42:58.532] 650 - [access] '
                       '"wthttp: 127.0.0.1 GET /health HTTP/1.1 404 85"\n'), ""
        raise AssertionError(argv)


def answers(healthy_after):
    """check(): an instance answers 200 once the clock passed its time (None: never)."""
    def check(address, port, path):
        at = healthy_after[port]
        if at is not None and clock.now >= at:
            return True, "HTTP 200"
        return False, "ConnectionRefusedError: Connection refused"
    clock = Clock()
    return check, clock


def test_one_systemctl_call_restarts_them_all_then_each_is_waited_for():
    check, clock = answers({9090: 0.5, 9092: 1.25})
    host = Host()
    outcomes = ir.restart(host, INSTANCES, "/health", 10, 0.25, check, clock, clock.sleep)
    assert host.commands == [["systemctl", "reset-failed", "wt@9090.service", "wt@9092.service"],
                             ["systemctl", "restart", "wt@9090.service", "wt@9092.service"]]
    assert [(o.server, o.healthy, o.seconds) for o in outcomes] == [("app1-9090", True, 0.5), ("app1-9092", True, 1.25)]
    assert outcomes[0].reason == "answered /health after 0.5 s"


def test_an_instance_that_does_not_come_back_is_explained_by_systemd_and_its_log():
    check, clock = answers({9090: 0.0, 9092: None})
    host = Host(restart_rc=1)
    first, second = ir.restart(host, INSTANCES, "/health", 3, 0.5, check, clock, clock.sleep)
    assert first.healthy and not second.healthy and second.seconds == 3.0
    assert second.reason.startswith("not answering /health with 200 after 3 s (last: ConnectionRefusedError")
    assert "systemctl restart failed: Job for wt@9092.service failed." in second.reason
    assert "wt@9092.service is activating (auto-restart); result exit-code, exit status 1; restarted 3 time(s)" \
        in second.reason
    assert second.reason.endswith("last log: Traceback (most recent call last): | ImportError: no module named wt")
    assert ["systemctl", "show", "--no-pager", "-p", ",".join(ir.EXPLAIN_PROPERTIES), "wt@9092.service"] \
        in host.commands


def test_nothing_to_restart_runs_nothing():
    host = Host()
    assert ir.restart(host, [], "/health", 3, 0.5) == [] and host.commands == []


def test_systemctl_show_blocks():
    parsed = ir.parse_systemctl_show(SHOW + "\nId=wt@9090.service\nActiveState=active\n")
    assert parsed["wt@9092.service"]["NRestarts"] == "3" and parsed["wt@9090.service"]["ActiveState"] == "active"


@pytest.fixture
def health_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probe_over_http(health_server):
    assert ir.probe("127.0.0.1", health_server, "/health") == (True, "HTTP 200")
    assert ir.probe("127.0.0.1", health_server, "/nope") == (False, "HTTP 404")
    healthy, answer = ir.probe("127.0.0.1", 1, "/health", timeout=1)
    assert not healthy and answer.startswith("ConnectionRefusedError")


def test_instances_move_to_their_release_before_the_restart_and_say_which_they_ran(tmp_path):
    releases, links = tmp_path / "releases", tmp_path / "instances"
    for release in ("1.0", "2.0"):
        (releases / release).mkdir(parents=True)
    links.mkdir()
    (links / "9090").symlink_to(releases / "1.0")
    check, clock = answers({9090: 0.0, 9092: 0.0, 9094: 0.0})
    host = Host()
    moving = [dict(INSTANCES[0], release="2.0"), dict(INSTANCES[1], release="3.0"),
              {"server": "app1-9094", "port": 9094, "address": "10.0.0.1", "unit": "wt@9094.service"}]
    outcomes = ir.restart(host, moving, "/health", 3, 0.5, check, clock, clock.sleep,
                          links_dir=str(links), releases_dir=str(releases))
    assert [(o.server, o.healthy, o.release, o.previous_release) for o in outcomes] == [
        ("app1-9090", True, "2.0", "1.0"), ("app1-9092", False, None, None), ("app1-9094", True, None, None)]
    assert outcomes[1].reason.startswith("release 3.0 is not installed in ")
    assert os.readlink(links / "9090") == str(releases / "2.0") and not (links / "9092").exists()
    assert host.commands[:2] == [["systemctl", "reset-failed", "wt@9090.service", "wt@9094.service"],
                                 ["systemctl", "restart", "wt@9090.service", "wt@9094.service"]]
