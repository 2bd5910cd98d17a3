"""What a role has to change on a host, from one host_state read: the comparisons the file, template,
copy, apt, user and group modules would make."""

import hashlib

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.host_differences import (
    DifferencesError,
    account_differs,
    host_differences,
    wanted_files,
)

CHECKSUM = hashlib.sha1(b'WT_APP_VERSION=""\n').hexdigest()
FILE = {"src": "release.env.j2", "dest": "/opt/wtstack/release.env", "mode": "0644", "owner": "root", "group": "root"}
ACCOUNT = {"user": "wt", "group": "wt", "home": "/nonexistent", "shell": "/usr/sbin/nologin"}


def directory(mode="0755", owner="root", group="root", kind="directory"):
    return {"exists": True, "type": kind, "mode": mode, "owner": owner, "group": group}


def file(checksum=CHECKSUM, **changes):
    return {**directory(mode="0644", kind="file"), "checksum": checksum, **changes}


def converged():
    """A host_state read of a host that has everything."""
    return {"paths": {"/opt/wtstack": directory(), FILE["dest"]: file()},
            "packages": {"python3-venv": True}, "requirements": [{"satisfied": True}],
            "users": {"wt": {"exists": True, "group": "wt", "home": "/nonexistent", "shell": "/usr/sbin/nologin"}},
            "groups": {"wt": {"exists": True}}}


def differences(read, **wanted):
    return host_differences(read, **{"account": ACCOUNT, "directories": ["/opt/wtstack"],
                                     "files": wanted_files([FILE], [CHECKSUM]), **wanted})


def test_a_converged_host_differs_in_nothing():
    assert differences(converged()) == {"missing_packages": [], "account_differs": False, "directories": [],
                                        "files": [], "requirements_met": True, "pending": False}


def test_a_fresh_host_needs_everything():
    fresh = {"paths": {"/opt/wtstack": {"exists": False}, FILE["dest"]: {"exists": False}},
             "packages": {"python3-venv": False, "libwt": True, "python3-packaging": False},
             "requirements": [{"satisfied": False}], "users": {"wt": {"exists": False}},
             "groups": {"wt": {"exists": False}}}
    assert differences(fresh) == {"missing_packages": ["python3-venv", "python3-packaging"], "account_differs": True,
                                  "directories": ["/opt/wtstack"], "files": [FILE["dest"]], "requirements_met": False,
                                  "pending": True}


@pytest.mark.parametrize("state", [file(checksum="0" * 40), file(mode="0600"), file(owner="wt"), file(group="wt"),
                                   directory(kind="link"), {"exists": False}])
def test_a_file_differs_in_type_mode_owner_group_or_content(state):
    read = converged()
    read["paths"][FILE["dest"]] = state
    assert differences(read)["files"] == [FILE["dest"]]
    assert differences(read)["pending"]


@pytest.mark.parametrize("state", [directory(mode="0700"), directory(owner="wt"), directory(group="wt"),
                                   directory(kind="link"), {"exists": False}])
def test_a_directory_differs_in_type_mode_owner_or_group(state):
    read = converged()
    read["paths"]["/opt/wtstack"] = state
    assert differences(read)["directories"] == ["/opt/wtstack"]


def test_directories_of_another_kind():
    read = converged()
    read["paths"]["/opt/wtstack"] = directory(mode="0700", owner="wt")
    assert differences(read, directory={"mode": "0700", "owner": "wt"})["directories"] == []


@pytest.mark.parametrize("user", [{"group": "nogroup"}, {"home": "/home/wt"}, {"shell": "/bin/bash"},
                                  {"exists": False}])
def test_an_account_differs_in_group_home_or_shell(user):
    users = {"wt": {**converged()["users"]["wt"], **user}}
    assert account_differs(users, {"wt": {"exists": True}}, **ACCOUNT)
    assert account_differs(converged()["users"], {"wt": {"exists": False}}, **ACCOUNT)


def test_what_is_not_asked_about_is_not_compared():
    assert host_differences({"paths": {}}) == {"missing_packages": [], "account_differs": False, "directories": [],
                                               "files": [], "requirements_met": True, "pending": False}


def test_each_file_is_the_roles_own_entry_with_its_checksum():
    assert wanted_files([FILE], [CHECKSUM]) == [dict(FILE, checksum=CHECKSUM)]
    with pytest.raises(DifferencesError, match="1 files but 2 checksums"):
        wanted_files([FILE], [CHECKSUM, CHECKSUM])
    with pytest.raises(DifferencesError, match=r"files\[0\]: owner, group missing"):
        wanted_files([{"dest": "/x", "mode": "0644"}], [CHECKSUM])


@pytest.mark.parametrize("change", ["packages", "requirements", "account"])
def test_any_single_difference_is_pending(change):
    read = converged()
    if change == "packages":
        read["packages"] = {"python3-venv": False}
    elif change == "requirements":
        read["requirements"] = [{"satisfied": False}]
    else:
        read["users"]["wt"]["shell"] = "/bin/bash"
    assert differences(read)["pending"]
