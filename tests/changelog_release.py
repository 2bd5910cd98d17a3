"""A trial release of the changelog in a temporary copy of the checkout (make lint).

Copies every file git tracks or would, sets galaxy.yml's version to the next release (galaxy.yml's own when
it is ahead of the last release in changelogs/changelog.yaml, else the next minor), runs
`antsibull-changelog release` there and checks what it wrote:
- every module, filter, role and playbook of the collection is listed as new exactly once across all
  releases (a plugin whose version_added is not the release it comes with is missing; a playbook needs an
  `add object.playbook` fragment);
- CHANGELOG.md carries no Ansible markup printed literally (C(...) in a fragment: fragments are RST, write
  ``...``).
Nothing in the checkout changes. Exits non-zero naming each problem.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MARKUP = re.compile(r"(?<![\w\\])[BCEILMOPRUV]\\?\((?!\\?\))")  # CHANGELOG.md escapes ( as \(


def tree_files():
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and os.path.lexists(REPO / name)]


def version_key(version):
    return tuple(int(part) for part in re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups())


def trial_version(galaxy_version, releases):
    last = max(releases, key=version_key) if releases else None
    if last is None or version_key(galaxy_version) > version_key(last):
        return galaxy_version
    major, minor, dummy = version_key(last)
    return f"{major}.{minor + 1}.0"


def collection_objects(tree):
    """(kind, name) of everything the changelog lists as new: modules, filters, roles, playbooks."""
    found = {("module", path.stem) for path in (tree / "plugins/modules").glob("*.py") if path.stem != "__init__"}
    found |= {("filter", path.stem) for path in (tree / "plugins/filter").glob("*.py") if path.stem != "__init__"}
    found |= {("role", path.name) for path in (tree / "roles").iterdir() if (path / "meta/main.yml").is_file()}
    found |= {("playbook", path.stem) for path in (tree / "playbooks").glob("*.yml")}
    return found


def listed_objects(changes):
    """(kind, name) -> the releases that list it as new."""
    listed = {}
    for version, release in changes["releases"].items():
        entries = [("module", entry) for entry in release.get("modules", [])]
        entries += [(kind, entry) for kind, items in release.get("plugins", {}).items() for entry in items]
        entries += [(kind, entry) for kind, items in release.get("objects", {}).items() for entry in items]
        for kind, entry in entries:
            listed.setdefault((kind, entry["name"]), []).append(version)
    return listed


def problems_of(tree, version):
    changes = yaml.safe_load((tree / "changelogs/changelog.yaml").read_text())
    problems = []
    if version not in changes["releases"]:
        problems.append(f"the trial release {version} is not in changelogs/changelog.yaml")
    listed = listed_objects(changes)
    for kind, name in sorted(collection_objects(tree)):
        releases = listed.get((kind, name), [])
        if not releases:
            problems.append(f"{kind} {name} is listed as new in no release (its version_added, or for a playbook "
                            f"an 'add object.playbook' fragment, should say {version})")
        elif len(releases) > 1:
            problems.append(f"{kind} {name} is listed as new in {len(releases)} releases: {', '.join(releases)}")
    for kind, name in sorted(set(listed) - collection_objects(tree)):
        problems.append(f"the changelog lists {kind} {name}, which the collection does not have")
    for number, line in enumerate((tree / "CHANGELOG.md").read_text().splitlines(), 1):
        for match in MARKUP.finditer(line):
            problems.append(f"CHANGELOG.md:{number}: Ansible markup printed as is ({line[match.start():][:40]}...); "
                            "in a fragment write ``...``")
    return problems


def main():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    changes = yaml.safe_load((REPO / "changelogs/changelog.yaml").read_text())
    version = trial_version(galaxy["version"], list(changes["releases"]))
    with tempfile.TemporaryDirectory(prefix="changelog-trial-") as workdir:
        tree = Path(workdir, "fleet")
        for name in tree_files():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target, follow_symlinks=False)
        galaxy_yml = tree / "galaxy.yml"
        galaxy_yml.write_text(re.sub(r"^version: .*$", f"version: {version}", galaxy_yml.read_text(), flags=re.M))
        env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
        result = subprocess.run(["antsibull-changelog", "release", "--version", version], cwd=tree, env=env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"antsibull-changelog release {version} failed:\n{result.stdout}{result.stderr}", file=sys.stderr)
            return 1
        problems = problems_of(tree, version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"trial release {version}: every module, filter, role and playbook listed once, no literal markup")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
