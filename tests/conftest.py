"""Makes `ansible_collections.wtstack.fleet` importable from the checkout, runs modules in-process, and
turns a skip for a missing tool into a failure under `make test`.

A tree at .../ansible_collections/wtstack/fleet (ansible-test, an installed collection, collection CI's
checkout) is importable through its parents. A checkout elsewhere gets two links at run time, which git
ignores (a tracked link to a directory fails ansible-test's sanity, and one in a collections path makes
`ansible-galaxy collection install .` a no-op): collections/ansible_collections/wtstack/fleet to the
checkout's root, and playbooks/collections to collections/, the playbook-adjacent collections of
site.yml and playbooks/*.yml. Tests import and playbooks run exactly the checkout's code. The Makefile
makes the same links (target links).

A test that cannot run without a program of this machine skips with a reason that starts with
MISSING_TOOL ("missing tool: haproxy ..."), one that needs root (the lab) with NOT_ROOT. `make test`
installs every such program first (make test-packages) and sets WTSTACK_REQUIRE_TOOLS=1: a skip of
either kind is then a failure that says what is missing, so a green `make test` never tested less
than it says.
"""
import contextlib
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Link (relative to the root) -> its target (relative to the link's directory).
CHECKOUT_LINKS = {"collections/ansible_collections/wtstack/fleet": "../../..",
                  "playbooks/collections": "../collections"}


def collections_root():
    """The directory whose ansible_collections/wtstack/fleet is this tree, its links made if need be."""
    if REPO.parent.parent.name == "ansible_collections":
        return REPO.parents[2]
    for name, target in CHECKOUT_LINKS.items():
        link = REPO / name
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        staged = link.with_name(f".{link.name}.{os.getpid()}")
        staged.unlink(missing_ok=True)
        staged.symlink_to(target)
        staged.replace(link)  # atomic: another process may be making the same link
    return REPO / "collections"


sys.path.insert(0, str(collections_root()))

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # the oldest ansible-core we support reads module arguments from basic._ANSIBLE_ARGS
    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False, diff=False) -> the module's result dict."""

    def run(module, args, check_mode=False, diff=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        capsys.readouterr()
        with patch_module_args(args), pytest.raises(SystemExit):
            module.main()
        return json.loads(capsys.readouterr().out)

    return run


MISSING_TOOL = "missing tool: "
NOT_ROOT = "needs root: "


def _skip_reason(report):
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("WTSTACK_REQUIRE_TOOLS") != "1" or not report.skipped:
        return
    reason = _skip_reason(report)
    if reason.startswith((MISSING_TOOL, NOT_ROOT)):
        report.outcome = "failed"
        report.longrepr = (f"{reason}\nUnder `make test` (WTSTACK_REQUIRE_TOOLS=1) this fails the run instead of "
                           "skipping: run `make test` as root on Debian 12 or 13 (`make test-packages` installs "
                           "what the tests need).")
