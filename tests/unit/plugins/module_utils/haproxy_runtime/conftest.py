"""Fixtures of the haproxy_runtime tests: a test that takes ``captured`` runs once per HAProxy
version captured (tests/unit/fixtures/haproxy/2.6, 3.0)."""

import pytest
from haproxy_replies import FIXTURES, VERSIONS, FakeHAProxy, instance_replies


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
