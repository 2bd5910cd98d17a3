"""The repository's own documents stay true to the tree: the links of README, docs/ and the role
READMEs, docs/design.md's reader's check, the paths that documents and comments name, and
docs/layout.md's layout of plugins/."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs/design.md"
LAYOUT = REPO / "docs/layout.md"
# The documents whose links are checked: the start page, the pages under docs/ and the roles' READMEs.
LINKED_DOCUMENTS = sorted([REPO / "README.md", *REPO.joinpath("docs").glob("*.md"),
                           *REPO.joinpath("roles").glob("*/README.md")])
TEXT_SUFFIXES = {".py", ".yml", ".yaml", ".md", ".j2", ".cfg", ".lua", ".txt"}
# Not ours to check: tools' and tests' output, caches, the links back to the root, captured replies.
SKIPPED = ("collections", "playbooks/collections", "tests/output", "tests/unit/fixtures")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
LINK_MARKUP = re.compile(r"\[[^\]]*\]\(([^)\s#]+)(?:#[^)\s]*)?\)")
# A path into the tree as documents and comments write it (globs such as rolling_*.py are not paths).
NAMED_PATH = re.compile(r"\b(?:plugins|roles|playbooks|tests|bench|docs)/[A-Za-z0-9_./@-]+\.(?:py|yml|md|j2|txt)\b")
TEST_REFERENCE = re.compile(r"\]\(([^)]+\.py)\)::(\w+)(?:\[([^\]]+)\])?")


def text_files():
    """(path relative to the root, text) of every text file of the tree we write."""
    for directory, directories, files in os.walk(REPO):
        relative_dir = Path(directory).relative_to(REPO).as_posix()
        directories[:] = sorted(name for name in directories if not name.startswith((".", "__pycache__"))
                                and (Path(relative_dir) / name).as_posix() not in SKIPPED)
        for name in sorted(files):
            path = Path(directory, name)
            if path.suffix in TEXT_SUFFIXES or name == "Makefile":
                yield path.relative_to(REPO).as_posix(), path.read_text(errors="replace")


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown):
    found, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.add(github_anchor(line.lstrip("#")))
    return found


def document_links():
    """(document relative to the root, link) for every link of the documents that is not a URL."""
    return [(document.relative_to(REPO).as_posix(), link) for document in LINKED_DOCUMENTS
            for link in dict.fromkeys(LINK.findall(document.read_text())) if not re.match(r"[a-z]+:", link)]


def test_the_documents_checked_include_the_start_page_and_every_page_of_docs():
    checked = {document for document, dummy in document_links()}
    assert {"README.md", "docs/design.md", "docs/layout.md", "docs/routing.md"} <= checked


@pytest.mark.parametrize("document, link", document_links())
def test_every_link_of_the_documents_resolves_inside_the_repository(document, link):
    target, dummy, anchor = link.partition("#")
    source = REPO / document
    path = (source.parent / target).resolve() if target else source
    assert path.is_relative_to(REPO), f"{document} links to {target}, outside the repository"
    assert path.exists(), f"{document} links to {target}, which does not exist"
    if anchor:
        assert path.suffix == ".md", link
        assert anchor in anchors(path.read_text()), f"{document}: {path.name} has no heading for #{anchor}"


def readers_check_rows():
    text = DESIGN.read_text()
    section = re.search(r"^## Reader's check.*?\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "docs/design.md has no reader's check"
    return [line for line in section.group(1).splitlines() if re.match(r"\| `\w+` \|", line)]


def test_the_readers_check_covers_ten_variables_each_with_a_test():
    rows = readers_check_rows()
    assert len(rows) == 10
    for row in rows:
        assert TEST_REFERENCE.search(row.split(" | ")[-1]), row


@pytest.mark.parametrize("path, name, case", sorted({reference for row in readers_check_rows()
                                                     for reference in TEST_REFERENCE.findall(row)}))
def test_every_test_the_readers_check_names_exists(path, name, case):
    source = (DESIGN.parent / path).resolve()
    assert source.is_file(), path
    text = source.read_text()
    assert re.search(rf"^def {name}\(", text, re.M), f"{path} has no test {name}"
    if case:
        cases = text + (REPO / "tests" / "bad_inputs.py").read_text()
        assert f'"{case}"' in cases, f"{name} has no case {case!r}"


def test_every_path_a_document_or_comment_names_exists():
    missing = sorted({f"{relative}: {named}" for relative, text in text_files()
                      for named in NAMED_PATH.findall(text) if not (REPO / named).exists()})
    assert not missing, "\n".join(missing)


def without_links_to_the_design_document(relative, line):
    """The line without its Markdown links that resolve to docs/design.md (from docs/, by its bare name)."""
    return LINK_MARKUP.sub(lambda link: "" if (REPO / relative).parent.joinpath(link.group(1).partition("#")[0])
                           .resolve() == DESIGN else link.group(0), line)


def test_references_to_a_design_document_point_into_docs_design_md():
    """The repository has one design document. A design file named without docs/ (docs/layout.md's
    entry under docs/ and links that resolve to it aside) once meant another one, which the repository
    does not have."""
    stray = sorted(f"{relative}: {line.strip()}" for relative, text in text_files()
                   for line in text.splitlines()
                   if re.search(r"(?<!docs/)\bdesign\.md\b", without_links_to_the_design_document(relative, line))
                   and not (relative == "docs/layout.md" and re.match(r" +design\.md +", line)))
    assert not stray, "\n".join(stray)


def layout_paths(section):
    """The paths docs/layout.md names: a line's first word, under the directories above it that are
    indented less (two spaces a level)."""
    parents, paths = [], []
    for line in section.splitlines():
        if not line.strip() or line.startswith("```"):
            continue
        level = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        parents = parents[:level]
        paths.append("".join(parents) + name)
        if name.endswith("/"):
            parents.append(name)
    return paths


def test_the_layout_names_every_file_and_directory_of_plugins_playbooks_roles_and_docs():
    layout = LAYOUT.read_text()
    section = re.search(r"^# Layout\n.*?^```\n(.*?)^```", layout, re.M | re.S)
    assert section, "docs/layout.md has no Layout heading with a block"
    named = layout_paths(section.group(1))
    assert len(named) == len(set(named)), "a path is listed twice"
    expected = {path.relative_to(REPO).as_posix() + ("/" if path.is_dir() else "")
                for path in REPO.joinpath("plugins").rglob("*") if "__pycache__" not in path.parts}
    # Not playbooks/collections, the checkout's link made at run time (tests/conftest.py).
    expected |= {f"playbooks/{path.name}" for path in REPO.joinpath("playbooks").iterdir() if not path.is_symlink()}
    expected |= {f"roles/{path.name}/" for path in REPO.joinpath("roles").iterdir()}
    expected |= {f"docs/{path.name}" for path in REPO.joinpath("docs").iterdir()}
    assert sorted(expected - set(named)) == []
    assert [path for path in named if path.startswith(("plugins/", "playbooks/", "roles/", "docs/"))
            and not (REPO / path).exists()] == []
