"""The docs site builds: ``mkdocs build --strict`` fails on a broken link or anchor, a page missing from the
nav, a missing snippet or a docstring mkdocstrings cannot render (CI runs the suite, so CI builds the site)."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly(tmp_path):
    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the docs tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8").count("msqnet.checkpoint.model_folder.load_model")


def test_the_readme_pictures_and_doc_links_exist():
    """The README is read on the forge, outside the site: every relative link and picture in it must exist."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = {m.split("#")[0] for m in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in m and not m.startswith("#")}
    assert targets, "the README links no docs page"
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert not missing, f"README.md links files that do not exist: {missing}"
