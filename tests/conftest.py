"""Makes `ansible_collections.wtstack.fleet` importable from the checkout.

collections/ansible_collections/wtstack/fleet is a symlink to the repository root, the same
path ansible.cfg gives Ansible, so tests import exactly what playbooks run.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "collections"))
