"""A griffe extension for the docs site: jnn's docstrings are reST-flavoured; mkdocstrings renders Markdown.

It rewrites each docstring just before rendering (the source files are untouched):

- doctest runs (``>>>`` lines with their output, up to a blank line) become fenced ``pycon`` blocks, which
  Markdown would otherwise show as nested block quotes;
- a paragraph ending in ``::`` followed by an indented literal block becomes ``:`` and a fenced block;
- Sphinx roles (``:func:`x```, ``:class:`~a.b```) become code spans.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|py:\w+):`~?([^`]+)`")
_DOCTEST_FLAG = re.compile(r"\s*#\s*doctest:.*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _fence(lines: list[str], at: int, pad: int) -> list[str]:
    """``lines`` with ``at`` columns of indentation removed, fenced, the fence indented by ``pad``."""
    body = [line[at:] if line.strip() else "" for line in lines]
    body = [_DOCTEST_FLAG.sub("", line) for line in body]
    lang = "pycon" if body and body[0].startswith(">>>") else "python"
    indent = " " * pad
    return [f"{indent}```{lang}", *[(indent + line) if line else "" for line in body], f"{indent}```"]


def markdown_docstring(text: str) -> str:
    """The docstring ``text`` with doctests, literal blocks and roles turned into Markdown."""
    text = _ROLE.sub(r"`\1`", text)
    lines = text.split("\n")
    out: list[str] = []
    i, in_fence = 0, False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
            out.append(line)
            i += 1
        elif in_fence:
            out.append(line)
            i += 1
        elif stripped.startswith(">>>"):
            at, j = _indent(line), i
            while j < len(lines) and lines[j].strip():
                j += 1
            out.extend(_fence(lines[i:j], at, at))
            i = j
        elif line.rstrip().endswith("::") and not stripped.startswith(":"):
            base = _indent(line)
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            k = j
            while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > base):
                k += 1
            while k > j and not lines[k - 1].strip():
                k -= 1
            if k > j:
                head = line.rstrip()[:-2].rstrip()
                out.append(head + ":" if head.strip() else "")
                out.append("")
                block = lines[j:k]
                at = min(_indent(b) for b in block if b.strip())
                out.extend(_fence(block, at, base))
                out.append("")
                i = k
            else:
                out.append(line)
                i += 1
        else:
            out.append(line)
            i += 1
    return "\n".join(out)


class DoctestToMarkdown(griffe.Extension):
    """Rewrite every loaded docstring with :func:`markdown_docstring`."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self.on_object(obj=pkg, loader=loader)


_TORCH_DOCS = "https://docs.pytorch.org/docs/stable/generated/"
# jnn names whose torch counterpart lives elsewhere, and jnn additions that have none
_TORCH_NAME = {"Parameter": "torch.nn.parameter.Parameter", "Buffer": "torch.nn.parameter.Buffer"}
_JNN_ONLY = frozenset({"batch_norm_with_stats", "instance_norm_with_stats", "embedding_renorm"})


def torch_counterpart(path: str) -> str | None:
    """The torch name a public jnn layer or functional mirrors (``jnn.modules.conv.Conv2d`` -> ``torch.nn.Conv2d``)."""
    import jnn.functional
    import jnn.modules

    parts = path.split(".")
    name = parts[-1]
    if parts[:2] == ["jnn", "modules"] and name in jnn.modules.__all__:
        return _TORCH_NAME.get(name, f"torch.nn.{name}")
    if parts[:2] == ["jnn", "functional"] and name in jnn.functional.__all__ and name not in _JNN_ONLY:
        return f"torch.nn.functional.{name}"
    return None


def with_torch_link(text: str, torch_name: str) -> str:
    """``text`` with a link to ``torch_name``'s PyTorch page after its summary paragraph."""
    link = f"PyTorch: [`{torch_name}`]({_TORCH_DOCS}{torch_name}.html)"
    summary, sep, rest = text.partition("\n\n")
    return f"{summary}\n\n{link}{sep}{rest}"


class TorchLinks(griffe.Extension):
    """Link every public layer (``jnn.modules``) and functional (``jnn.functional``) to its PyTorch page."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is None or not (obj.is_class or obj.is_function):
            return
        torch_name = torch_counterpart(obj.path)
        if torch_name is not None:
            obj.docstring.value = with_torch_link(obj.docstring.value, torch_name)
