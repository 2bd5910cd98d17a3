"""The release's numbers agree: galaxy.yml and the changelog, each object's version_added and the release
that lists it as new, and the supported ansible-core range in meta/runtime.yml, requirements.txt, the
roles' min_ansible_version and the pinned virtualenvs at both ends of it."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHANGES = yaml.safe_load((REPO / "changelogs/changelog.yaml").read_text())


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def listed_as_new():
    """(kind, name, release) of every module and filter the changelog lists as new."""
    for version, release in CHANGES["releases"].items():
        for entry in release.get("modules", []):
            yield "module", entry["name"], version
        for kind, entries in release.get("plugins", {}).items():
            for entry in entries:
                yield kind, entry["name"], version


def documented_version_added(kind, name):
    path = REPO / ("plugins/modules" if kind == "module" else f"plugins/{kind}") / f"{name}.py"
    documentation = re.search(r'^DOCUMENTATION = r?"""(.*?)"""', path.read_text(), re.M | re.S).group(1)
    return str(yaml.safe_load(documentation)["version_added"])


def test_galaxy_version_is_the_last_release_or_ahead_of_it():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert version_key(galaxy["version"]) >= max(map(version_key, CHANGES["releases"]))


@pytest.mark.parametrize("kind, name, release", list(listed_as_new()))
def test_version_added_is_the_release_that_lists_it(kind, name, release):
    assert documented_version_added(kind, name) == release


def test_the_supported_ansible_core_range_is_one_everywhere():
    required = yaml.safe_load((REPO / "meta/runtime.yml").read_text())["requires_ansible"]
    assert required == ">=2.17.0,<2.20"
    ranges = re.search(r"^ansible-core(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert ranges == required.replace(" ", "")
    oldest = re.search(r"^ansible-core==(\S+)", (REPO / "requirements-oldest.txt").read_text(), re.M).group(1)
    newest = re.search(r"^ansible-core==(\S+)", (REPO / "requirements-test.txt").read_text(), re.M).group(1)
    assert oldest.startswith("2.17.") and newest.startswith("2.19."), (oldest, newest)
    for meta in sorted(REPO.glob("roles/*/meta/main.yml")):
        assert yaml.safe_load(meta.read_text())["galaxy_info"]["min_ansible_version"] == "2.17", meta


def test_the_collection_ships_its_licence_and_its_requirements_as_ranges():
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO / "LICENSE").read_text()[:200]
    environment = yaml.safe_load((REPO / "meta/execution-environment.yml").read_text())
    assert environment["dependencies"]["python"] == "requirements.txt"
    requirements = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    assert [line for line in requirements if "==" in line] == [], "requirements.txt is for ranges, not pins"
