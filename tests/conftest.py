"""Makes `ansible_collections.wtstack.fleet` importable from the checkout, and runs modules in-process.

collections/ansible_collections/wtstack/fleet is a symlink to the repository root, the same
path ansible.cfg gives Ansible, so tests import exactly what playbooks run.
"""
import contextlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "collections"))

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
