"""Fixtures of the haproxy_runtime tests: a test that takes ``captured`` runs once per HAProxy
version captured (tests/unit/fixtures/haproxy/2.6, 3.0)."""

import importlib.util
import sys
from pathlib import Path

import pytest

# The tests import haproxy_replies by name: under ansible-test units (the collection loader) their
# directory is not on sys.path, so it is loaded here, before them.
if "haproxy_replies" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("haproxy_replies", Path(__file__).with_name("haproxy_replies.py"))
    sys.modules["haproxy_replies"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["haproxy_replies"])

from haproxy_replies import FIXTURES, VERSIONS, FakeHAProxy, instance_replies  # noqa: E402


@pytest.fixture(params=VERSIONS)
def captured(request):
    directory = FIXTURES / request.param

    def read(name):
        return (directory / name).read_text()

    read.version = request.param
    return read


@pytest.fixture
def fake_haproxy(captured, tmp_path):
    replies = {
        "show info": captured("show_info.txt"),
        "show servers state": captured("show_servers_state.txt"),
        "show servers state wt": captured("show_servers_state_wt.txt"),
        "show servers state nope": captured("error_servers_state_no_backend.txt"),
        "show stat nope 4 -1": captured("error_show_stat_no_backend.txt"),
        "show stat": captured("show_stat.txt"),
        "show stat -1 4 -1": captured("show_stat_servers.txt"),
        "set server wt/app1-9090 state drain": captured("reply_set_state_drain.txt"),
        "set server wt/app1-9090 weight 300": captured("error_bad_weight.txt"),
        # The captured configuration gave backend wt no ids: an instance is not found by id.
        **instance_replies(captured, ids=False),
    }
    server = FakeHAProxy(replies, path=str(tmp_path / "admin.sock"))
    yield server
    server.close()
