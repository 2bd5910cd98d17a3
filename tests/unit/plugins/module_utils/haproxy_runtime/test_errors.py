"""HAProxy's error replies, recognised."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import client, errors
from haproxy_replies import ReplaySocket


@pytest.mark.parametrize("name, error, words", [
    ("error_no_such_backend.txt", errors.UnknownBackend, "No such backend."),
    ("error_servers_state_no_backend.txt", errors.UnknownBackend, "Can't find backend."),
    ("error_show_stat_no_backend.txt", errors.UnknownBackend, "No such proxy."),
    ("error_no_such_server.txt", errors.UnknownServer, "No such server."),
    ("error_permission_denied.txt", errors.CommandPermissionDenied, "level admin"),
    ("error_unknown_command.txt", errors.CommandError, "does not know"),
])
def test_error_replies_are_recognised(captured, name, error, words):
    with pytest.raises(error) as caught:
        errors.classify_reply("the command", captured(name), client.DEFAULT_SOCKET)
    assert words in str(caught.value)
    assert caught.value.reply == captured(name)


@pytest.mark.parametrize("name", ["error_bad_state.txt", "error_bad_weight.txt", "error_static_weight.txt"])
def test_other_error_replies_are_command_errors_with_haproxys_words(captured, name):
    errors.classify_reply("set server", captured(name))  # not one of the known kinds
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket(captured(name)))
    with pytest.raises(errors.CommandError) as caught:
        api.command("set server wt/app1-9090 weight 300")
    assert captured(name).strip() in str(caught.value)


def test_successful_set_commands_answer_an_empty_line(captured):
    for name in ("reply_set_state_drain.txt", "reply_set_state_maint.txt", "reply_set_state_ready.txt",
                 "reply_set_state_ready_own.txt", "reply_set_state_drain_plain.txt", "reply_set_weight.txt",
                 "reply_set_weight_relative.txt", "reply_enable_server.txt"):
        assert captured(name) == "\n", name
