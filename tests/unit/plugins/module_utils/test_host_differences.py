"""What a role has to change on a host, from one host_state read: the comparisons the file, template,
copy, apt, user and group modules would make."""

import hashlib

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.host_differences import (
    DifferencesError,
    account_differs,
    host_differences,
    sha1_text,
)

CONTENT = "WT_APP_VERSION=\"\"\n"
FILE = {"src": "release.env.j2", "dest": "/opt/wtstack/release.env", "mode": "0644", "owner": "root", "group": "root"}
ACCOUNT = {"user": "wt", "group": "wt", "home": "/nonexistent", "shell": "/usr/sbin/nologin"}


def directory(mode="0755", owner="root", group="root", kind="directory"):
    return {"exists": True, "type": kind, "mode": mode, "owner": owner, "group": group}


def file(content=CONTENT, **changes):
    return {**directory(mode="0644", kind="file"), "checksum": sha1_text(content), **changes}


def converged():
    """A host_state result of a host that has everything."""
    return {"paths": {"/opt/wtstack": directory(), FILE["dest"]: file()},
            "packages": {"python3-venv": True}, "requirements": [{"satisfied": True}],
            "users": {"wt": {"exists": True, "group": "wt", "home": "/nonexistent", "shell": "/usr/sbin/nologin"}},
            "groups": {"wt": {"exists": True}}}


def differences(read, **wanted):
    return host_differences(read, **{"account": ACCOUNT, "directories": ["/opt/wtstack"], "files": [FILE],
                                     "contents": [CONTENT], **wanted})


def test_a_converged_host_differs_in_nothing():
    assert differences(converged()) == {"missing_packages": [], "account_differs": False, "directories_to_create": [],
                                        "files_to_write": [], "requirements_met": True}


def test_a_fresh_host_needs_everything():
    fresh = {"paths": {"/opt/wtstack": {"exists": False}, FILE["dest"]: {"exists": False}},
             "packages": {"python3-venv": False, "libwt": True, "python3-packaging": False},
             "requirements": [{"satisfied": False}], "users": {"wt": {"exists": False}},
             "groups": {"wt": {"exists": False}}}
    assert differences(fresh) == {"missing_packages": ["python3-venv", "python3-packaging"], "account_differs": True,
                                  "directories_to_create": ["/opt/wtstack"], "files_to_write": [FILE],
                                  "requirements_met": False}


@pytest.mark.parametrize("state", [file(content="other\n"), file(mode="0600"), file(owner="wt"), file(group="wt"),
                                   directory(kind="link"), {"exists": False}])
def test_a_file_differs_in_type_mode_owner_group_or_content(state):
    read = converged()
    read["paths"][FILE["dest"]] = state
    assert differences(read)["files_to_write"] == [FILE]


@pytest.mark.parametrize("state", [directory(mode="0700"), directory(owner="wt"), directory(group="wt"),
                                   directory(kind="link"), {"exists": False}])
def test_a_directory_differs_in_type_mode_owner_or_group(state):
    read = converged()
    read["paths"]["/opt/wtstack"] = state
    assert differences(read)["directories_to_create"] == ["/opt/wtstack"]


def test_directories_of_another_kind():
    read = converged()
    read["paths"]["/opt/wtstack"] = directory(mode="0700", owner="wt")
    assert differences(read, directory={"mode": "0700", "owner": "wt"})["directories_to_create"] == []


@pytest.mark.parametrize("user", [{"group": "nogroup"}, {"home": "/home/wt"}, {"shell": "/bin/bash"},
                                  {"exists": False}])
def test_an_account_differs_in_group_home_or_shell(user):
    users = {"wt": {**converged()["users"]["wt"], **user}}
    assert account_differs(users, {"wt": {"exists": True}}, **ACCOUNT)
    assert account_differs(converged()["users"], {"wt": {"exists": False}}, **ACCOUNT)


def test_what_is_not_asked_about_is_not_compared():
    assert host_differences({"paths": {}}) == {"missing_packages": [], "account_differs": False,
                                               "directories_to_create": [], "files_to_write": [],
                                               "requirements_met": True}


def test_a_path_that_was_not_read_is_the_callers_mistake():
    with pytest.raises(DifferencesError, match="/etc/other was not read"):
        differences(converged(), directories=["/etc/other"])
    with pytest.raises(DifferencesError, match="1 files but 2 contents"):
        differences(converged(), contents=[CONTENT, CONTENT])


def test_content_is_hashed_as_its_utf_8_bytes_as_host_state_hashes_the_file():
    assert sha1_text("é\n") == hashlib.sha1(b"\xc3\xa9\n").hexdigest()
