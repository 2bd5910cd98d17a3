"""ansible-galaxy collection install, as a user runs it, from the checkout (`install .` in its root, the
checkout's ansible.cfg in force), from a git URL and from the built tarball: each into a collections path
of its own, from which wtstack.fleet's module documentation and its playbooks by name then resolve.

Ansible here sees only that path: no ANSIBLE_ setting of make's, a home of its own, no collection from
sys.path, and a working directory outside the checkout (where its links are adjacent collections).
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]

pytestmark = pytest.mark.slow


def run(*args, cwd, env):
    result = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def user_env(home, collections_path=None):
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    env.update(HOME=str(home), ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    if collections_path:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    return env


def assert_resolves_from(collections_path, env, cwd):
    """The installed collection is complete, and Ansible finds its module and playbooks there."""
    installed = collections_path / "ansible_collections/wtstack/fleet"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == VERSION
    for name in ("LICENSE", "CHANGELOG.md", "requirements.txt", "meta/runtime.yml", "playbooks/site.yml"):
        assert (installed / name).is_file(), f"{name} is not installed"
    # Neither the checkout's run-time links nor its development tooling are part of the collection.
    for name in ("collections", "playbooks/collections", "Makefile", "tests/e2e", ".git"):
        assert not os.path.lexists(installed / name), f"{name} was installed"
    doc = json.loads(run("ansible-doc", "--json", "-t", "module", "wtstack.fleet.haproxy_info", cwd=cwd, env=env))
    assert doc["wtstack.fleet.haproxy_info"]["doc"]["filename"] == str(installed / "plugins/modules/haproxy_info.py")
    # A playbook by name: its imported playbook and every role it imports resolve (syntax check, no host).
    listed = run("ansible-playbook", "-i", "localhost,", "wtstack.fleet.site", "--list-tasks", cwd=cwd, env=env)
    for role in ("wtstack.fleet.wt_app", "wtstack.fleet.haproxy"):
        assert f"{role} :" in listed, listed[-3000:]


def test_install_from_the_checkout_in_its_root(tmp_path):
    home = tmp_path / "home"
    env = user_env(home)  # ansible.cfg of the checkout's root applies: `ansible-galaxy` runs there
    out = run("ansible-galaxy", "collection", "install", ".", cwd=REPO, env=env)
    assert "Nothing to do" not in out, out
    collections_path = home / ".ansible/collections"
    assert f"wtstack.fleet:{VERSION} was installed successfully" in out, out
    # Again: nothing to do; with --force, installed again (it once met a link it could not remove).
    assert "Nothing to do" in run("ansible-galaxy", "collection", "install", ".", cwd=REPO, env=env)
    out = run("ansible-galaxy", "collection", "install", "--force", ".", cwd=REPO, env=env)
    assert "was installed successfully" in out, out
    assert_resolves_from(collections_path, env, cwd=tmp_path)


def test_install_from_a_git_url(tmp_path):
    """git+file:// installs what HEAD holds, as git+https:// from the published repository would."""
    if shutil.which("git") is None:
        pytest.skip("missing tool: git (apt-get install git)")
    inside = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--is-inside-work-tree"], capture_output=True,
                            text=True, check=False)
    if inside.stdout.strip() != "true":
        pytest.skip("the checkout is not a git work tree")
    collections_path = tmp_path / "collections"
    env = user_env(tmp_path / "home", collections_path)
    out = run("ansible-galaxy", "collection", "install", f"git+file://{REPO}", cwd=tmp_path, env=env)
    assert "was installed successfully" in out, out
    assert_resolves_from(collections_path, env, cwd=tmp_path)


def test_install_from_the_built_tarball(tmp_path):
    collections_path = tmp_path / "collections"
    env = user_env(tmp_path / "home", collections_path)
    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(REPO), cwd=tmp_path, env=env)
    tarball = tmp_path / f"wtstack-fleet-{VERSION}.tar.gz"
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"LICENSE", "MANIFEST.json", "FILES.json", "meta/execution-environment.yml"} <= names
    out = run("ansible-galaxy", "collection", "install", str(tarball), cwd=tmp_path, env=env)
    assert "was installed successfully" in out, out
    assert_resolves_from(collections_path, env, cwd=tmp_path)
