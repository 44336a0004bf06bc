"""The documentation cannot drift from the code: every code block in README.md and docs/ runs, and the site builds.

- Every ```python block of a page runs with ``exec``, in order, in one fresh namespace per page, with the working
  directory a temporary folder (blocks may write files). Every ```pycon block runs as a doctest in that same
  namespace, so printed output shown in the docs is checked. A block can opt out only with the fence
  ```{.python .no-run} (none does; it renders as Python). Tracebacks name the page and the line in it.
- ``mkdocs build --strict`` succeeds: no broken links, no missing pages, every ``::: jnn...`` API page resolves
  and every docstring parses without a warning.
- The catalogue page lists every class in ``jnn.modules.__all__`` and nothing that does not exist.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import traceback
import types

import jax
import numpy as np
import pytest

import jnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts)]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def code_blocks(text: str) -> list[tuple[list[str], int, str]]:
    """``(fence words, line of the first code line, code)`` for every fenced block, in order.

    The words of ```python are ``["python"]``; of superfences' ```{.python .no-run}, ``["python", "no-run"]``.
    """
    blocks = []
    for match in _FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "\n".join(line[indent:] for line in match.group("body").split("\n"))
        line = text.count("\n", 0, match.start("body")) + 1
        info = match.group("info").strip()
        words = re.findall(r"\.([\w-]+)", info) if info.startswith("{") else info.split()
        blocks.append((words, line, body))
    return blocks


RUNNABLE = ("python", "pycon")
# the pages with code to run (API pages hold only mkdocstrings directives)
PAGES = [p for p in MARKDOWN if any(w and w[0] in RUNNABLE for w, _, _ in code_blocks(p.read_text()))]


def run_page(path: pathlib.Path, root: pathlib.Path = ROOT) -> dict:
    """Run the page's python and pycon blocks in one namespace; raise AssertionError naming page and line."""
    name = str(path.relative_to(root))
    namespace: dict = {"__name__": "__docs__"}
    jnn.manual_seed(0)
    for words, line, code in code_blocks(path.read_text()):
        if not words or words[0] not in RUNNABLE or "no-run" in words[1:]:
            continue
        if words[0] == "python":
            try:
                exec(compile("\n" * (line - 1) + code, name, "exec"), namespace)
            except Exception as error:
                trace = "".join(traceback.format_exception(error))
                raise AssertionError(f"{name}: the python block at line {line} failed:\n{trace}") from None
        else:
            test = doctest.DocTestParser().get_doctest(code, namespace, name, name, line - 1)
            report: list[str] = []
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, out=report.append, clear_globs=False)
            if runner.failures:
                raise AssertionError(f"{name}: the pycon block at line {line} failed:\n" + "".join(report))
    return namespace


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x64, filtering = jax.config.jax_enable_x64, jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")  # no note under the errors that pycon blocks show
    try:
        namespace = run_page(path)
    finally:
        jax.config.update("jax_enable_x64", x64)  # a page may turn 64-bit mode on; the next one starts clean
        jax.config.update("jax_traceback_filtering", filtering)
    if path.name == "README.md":  # the README's tour ends in a model saved, reloaded and run three ways
        assert namespace["predict"].shape == (10,)
        assert (tmp_path / "model.npz").exists()
        np.testing.assert_array_equal(np.asarray(namespace["net2"](namespace["x"])), np.asarray(namespace["y"]))


def test_python_blocks_are_fenced_as_python():
    # a block fenced ```py, ```python3 or ```Python would silently not run
    for path in MARKDOWN:
        kinds = {words[0] for words, _, _ in code_blocks(path.read_text()) if words}
        odd = {k for k in kinds if k.lower().startswith("py") and k not in ("python", "pycon")}
        assert odd == set(), f"{path}: fence these blocks as ```python (or ```pycon) so they run: {odd}"


def test_code_blocks_parser_finds_indented_fences_and_lines():
    text = "intro\n```python\na = 1\n```\n- item\n\n    ```pycon\n    >>> a\n    1\n    ```\n"
    text += "```{.python .no-run}\nb\n```\n"
    assert code_blocks(text) == [(["python"], 3, "a = 1\n"), (["pycon"], 8, ">>> a\n1\n"),
                                 (["python", "no-run"], 12, "b\n")]


def test_a_failing_block_names_page_and_line(tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text("# t\n\n```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    with pytest.raises(AssertionError, match=r"broken\.md: the python block at line 8 failed") as info:
        run_page(broken, tmp_path)
    assert 'broken.md", line 8' in str(info.value)
    doc = tmp_path / "doc.md"
    doc.write_text("```python\nx = 1\n```\n\n```pycon\n>>> x + 1\n3\n```\n")
    with pytest.raises(AssertionError, match=r"doc\.md: the pycon block at line 6 failed"):
        run_page(doc, tmp_path)
    skipped = tmp_path / "skipped.md"
    skipped.write_text("```python\nx = 1\n```\n\n```{.python .no-run}\nx = 5\n```\n\n```pycon\n>>> x + 1\n2\n```\n")
    assert run_page(skipped, tmp_path)["x"] == 1


def _nav_files(config: str) -> list[str]:
    return re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)\s*$", config, re.M)


def test_every_docs_page_is_in_the_nav():
    nav = set(_nav_files((ROOT / "mkdocs.yml").read_text()))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_ext" not in p.parts}
    assert pages - nav == set(), "pages missing from mkdocs.yml's nav"
    assert nav - pages == set(), "nav entries without a page"


def test_every_public_name_has_an_api_page():
    directives = {d for page in (DOCS / "api").rglob("*.md") for d in re.findall(r"^::: (\S+)", page.read_text(), re.M)}
    undocumented = []
    for name in jnn.__all__:
        obj = getattr(jnn, name)
        home = obj.__name__ if isinstance(obj, types.ModuleType) else obj.__module__
        if not any(home == d or home.startswith(d + ".") or d.startswith(home + ".") for d in directives):
            undocumented.append(f"{name} ({home})")
    assert undocumented == [], "add a `::: module` directive under docs/api/ for these"


def test_site_builds_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    index = (tmp_path / "api" / "random" / "index.html").read_text()
    assert "MissingKeyError" in index and "&gt;&gt;&gt;" in index  # docstrings rendered, doctests shown as code
    assert "<blockquote>" not in index


def _catalogue_rows() -> list[tuple[list[str], str]]:
    """``(class names, module the row links to)`` for each row of the catalogue table."""
    rows = [line.split("|") for line in (DOCS / "catalogue.md").read_text().splitlines() if line.startswith("|")]
    return [(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", row[2]), re.search(r"\[(jnn\.[\w.]+)\]", row[3]).group(1))
            for row in rows[2:]]


def test_catalogue_lists_every_module_class():
    listed = [name for names, _ in _catalogue_rows() for name in names]
    missing = [name for name in jnn.modules.__all__ if name not in listed]
    assert missing == [], f"docs/catalogue.md does not list {missing}"
    unknown = [name for name in listed if not hasattr(jnn, name)]
    assert unknown == [], f"docs/catalogue.md lists names jnn does not have: {unknown}"
    assert len(listed) == len(set(listed)), "a class is listed twice"
    for names, module in _catalogue_rows():  # each row links to the API page of the module that defines it
        defined = importlib.import_module(module).__all__
        assert [n for n in names if n not in defined] == [], f"docs/catalogue.md: not defined in {module}"


def _docs_extension() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("griffe_doctest", DOCS / "_ext" / "griffe_doctest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_griffe_extension_turns_doctests_and_roles_into_markdown():
    module = _docs_extension()
    text = "See :func:`jnn.split` and :class:`~jnn.Module`.\n\n>>> 1 + 1\n2\n\nGiven explicitly::\n\n    >>> x = 1\n"
    assert module.markdown_docstring(text) == (
        "See `jnn.split` and `jnn.Module`.\n\n```pycon\n>>> 1 + 1\n2\n```\n\n"
        "Given explicitly:\n\n```pycon\n>>> x = 1\n```\n\n"
    )


def test_every_layer_and_functional_links_an_existing_torch_name():
    torch = pytest.importorskip("torch")
    module = _docs_extension()
    paths = [f"jnn.modules.x.{n}" for n in jnn.modules.__all__]
    paths += [f"jnn.functional.{n}" for n in jnn.functional.__all__]
    linked = [t for t in map(module.torch_counterpart, paths) if t is not None]
    assert len(linked) >= len(jnn.modules.__all__) + len(jnn.functional.__all__) - len(module._JNN_ONLY)
    missing = []
    for name in linked:
        obj = torch
        for part in name.split(".")[1:]:
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(name)
    assert missing == [], f"docs link these to PyTorch pages, but torch has no such name: {missing}"
    text = module.with_torch_link("Summary.\n\nMore.\n\nArgs:\n    x: y", "torch.nn.Conv2d")
    assert text.split("\n\n")[:3] == [
        "Summary.", "PyTorch: [`torch.nn.Conv2d`](https://docs.pytorch.org/docs/stable/generated/torch.nn.Conv2d.html)",
        "More."]
