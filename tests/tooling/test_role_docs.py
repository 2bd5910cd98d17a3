"""tools/role_docs.py: each role's README variable table is its argument spec, and says when it is not."""

import importlib.util
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("role_docs", REPO / "tools/role_docs.py")
role_docs = importlib.util.module_from_spec(_spec)
sys.modules["role_docs"] = role_docs
_spec.loader.exec_module(role_docs)


def test_every_roles_readme_table_is_generated_from_its_spec():
    checked = [path.parent.name for path, text, wanted in role_docs.readmes()]
    assert {"haproxy", "wt_app"} <= set(checked)
    for path, text, wanted in role_docs.readmes():
        assert text == wanted, f"{path}: run make docs"


def test_every_spec_option_has_a_row_and_markup_becomes_markdown():
    for role in ("haproxy", "wt_app"):
        table = role_docs.table(REPO / "roles" / role)
        spec = role_docs.yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())
        for name in spec["argument_specs"]["main"]["options"]:
            assert f"| `{name}` |" in table, (role, name)
    assert role_docs.markdown("see C(haproxy_tls_port) and L(docs,https://x.example/)") == \
        "see `haproxy_tls_port` and [docs](https://x.example/)"


def test_check_names_a_stale_readme_and_the_rewrite_fixes_it(tmp_path, monkeypatch, capsys):
    shutil.copytree(REPO / "roles/wt_app", tmp_path / "roles/wt_app")
    readme = tmp_path / "roles/wt_app/README.md"
    readme.write_text(readme.read_text().replace("| `wt_app_version` |", "| `wt_app_verison` |"))
    monkeypatch.setattr(role_docs, "REPO", tmp_path)
    assert role_docs.main(["--check"]) == 1
    assert "roles/wt_app/README.md: differs from" in capsys.readouterr().out
    assert role_docs.main([]) == 0
    assert role_docs.main(["--check"]) == 0
    assert "| `wt_app_version` |" in readme.read_text()
