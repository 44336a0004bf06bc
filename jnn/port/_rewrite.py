"""The libcst transformer behind :func:`jnn.port.port_source`: torch model source in, jnn + jnn.ops source out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from jnn.port._names import OPS, OTHER_MODULES, exists, is_module, jnn_name

_INIT_SKIP = frozenset({"calculate_gain", "NotInPlaceWarning"})
_CONTAINER_CALLS = frozenset({"list", "dict", "set", "OrderedDict", "defaultdict", "deque", "Counter"})
_CONTAINER_HINTS = ("List", "Dict", "list", "dict", "Sequence", "Mapping", "OrderedDict", "MutableMapping", "Set")
# torch's grad-mode switches: what is computed inside one runs with grad mode as it says (jnn.ops.detach_if_no_grad)
_GRAD_MODES = frozenset(f"torch.{prefix}{name}" for prefix in ("", "autograd.", "autograd.grad_mode.")
                        for name in ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled"))
_AUG_AT = {"+=": "add", "-=": "subtract", "*=": "multiply", "/=": "divide", "**=": "power"}
_AUGMENTED_INPLACE = {"+=": "add_", "-=": "sub_", "*=": "mul_", "/=": "div_", "//=": "floor_divide_",
                      "%=": "remainder_", "**=": "pow_", "&=": "bitwise_and_", "|=": "bitwise_or_",
                      "^=": "bitwise_xor_"}


@dataclasses.dataclass(frozen=True)
class Report:
    """One thing the port could not convert (or converted with a caveat), at ``path:line``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: jnn.port: {self.message}"


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def _expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def _first(node: cst.BaseExpression) -> cst.Arg:
    """``node`` as a call's first argument, followed by ``, ``."""
    return cst.Arg(node, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    text = " ".join(_code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _leftmost(node: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        node = node.func if isinstance(node, cst.Call) else node.value
    return node


def _import_name(node: cst.Attribute | cst.Name) -> str:
    return dotted(node) or ""


class _Survey(cst.CSTVisitor):
    """First pass: which names the file binds by import, and every name it uses."""

    def __init__(self) -> None:
        self.roots: set[str] = set()          # local names bound to the torch package itself
        self.aliases: dict[str, str] = {}     # local name -> torch qualified name (import torch.nn as nn, ...)
        self.imported: set[str] = set()       # every local name bound by an import
        self.numpy: set[str] = set()          # local names bound to the numpy package (import numpy as np)
        self.used: set[str] = set()
        self.bound: set[str] = set()          # names bound otherwise: assignments, defs, parameters, loops, ...
        self.star = False                     # the file has a ``from x import *``
        self.uses_torch = False

    def leave_Module(self, original_node: cst.Module) -> None:
        # ``torch`` used but never bound, in a file with a star import: it comes from there (timm's create_act.py
        # does ``from .activations import *`` then ``dir(torch.nn.functional)``)
        if self.star and "torch" in self.used and "torch" not in self.bound | self.imported:
            self.roots.add("torch")
            self.uses_torch = True

    def _bind(self, node: cst.CSTNode | None) -> None:
        if isinstance(node, cst.Name):
            self.bound.add(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            for element in node.elements:
                self._bind(element.value)
        elif isinstance(node, cst.StarredElement):
            self._bind(node.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:   # with ... as x, except ... as x
        self._bind(node.name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bound.add(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bound.add(node.name.value)

    def visit_Param(self, node: cst.Param) -> None:
        self.bound.add(node.name.value)

    def visit_Global(self, node: cst.Global) -> None:
        self.bound.update(n.name.value for n in node.names)

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = _import_name(alias.name)
            is_torch = full == "torch" or full.startswith("torch.")
            self.uses_torch |= is_torch or full in OTHER_MODULES
            if alias.asname is None:
                local = full.split(".")[0]
                if is_torch:
                    self.roots.add(local)
            else:
                local = alias.asname.name.value
                if is_torch:
                    self.aliases[local] = full
            self.imported.add(local)
            self.used.add(local)
            if full == "numpy":
                self.numpy.add(local)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = _import_name(node.module) if node.module is not None and not node.relative else ""
        is_torch = module == "torch" or module.startswith("torch.")
        self.uses_torch |= is_torch or module in OTHER_MODULES
        if isinstance(node.names, cst.ImportStar):
            self.star = True
            return False
        for alias in node.names:
            name = alias.name.value
            local = alias.asname.name.value if alias.asname else name
            self.imported.add(local)
            self.used.add(local)
            if is_torch:
                self.aliases[local] = f"{module}.{name}"
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.used.add(node.value)


class _LocalFunctions(cst.CSTVisitor):
    """Second pass: the file's own functions (not methods) that return no value (or only their first parameter),
    and of those, the ones that update their first parameter in place (``def normal_(data): data.copy_(...)``,
    HuBERT's and fairseq's init helpers; ``x[:, 1:] += s; return x`` with ``x: Tensor``, torchvision's MViT).
    Ported, an in-place update rebinds the parameter, so such a function returns it, and a call statement on an
    array stores the result (``normal_(m.weight.data)`` -> ``m.weight = normal_(m.weight)``), as for ``jnn.init``.
    A function returning nothing that does not update its parameter is never taken for an initialiser."""

    def __init__(self, inplace: frozenset[str], init_names: frozenset[str]) -> None:
        self.inplace, self.init_names = inplace, init_names
        self.no_value: set[str] = set()       # functions without ``yield`` or ``return <value>`` (but their first
        self.updating: dict[str, str] = {}    # parameter); those updating that parameter in place -> its name
        # (name, first parameter, [returns a value other than it], whether it is annotated a Tensor)
        self._stack: list[tuple[str, str | None, list[bool], bool]] = []
        self._in_class: list[bool] = [False]

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._in_class.append(True)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._in_class.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        params = [*node.params.posonly_params, *node.params.params]
        first = params[0].name.value if params and not self._in_class[-1] else None
        tensor = first is not None and params[0].annotation is not None and \
            "Tensor" in _code(params[0].annotation.annotation)
        self._stack.append((node.name.value, first, [False], tensor))
        self._in_class.append(False)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._in_class.pop()
        name, first, (returns,), _ = self._stack.pop()
        if first is None:
            return
        if returns:
            self.no_value.discard(name)   # one definition of that name returns a value: never rewrite its calls
            self.updating.pop(name, None)
        elif name not in self.updating or self.updating[name] == first:
            self.no_value.add(name)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and self._stack and not (
                isinstance(node.value, cst.Name) and node.value.value in ("None", self._stack[-1][1])):
            self._stack[-1][2][0] = True

    def visit_Yield(self, node: cst.Yield) -> None:
        if self._stack:
            self._stack[-1][2][0] = True

    def _updated(self, first: str) -> None:
        name = self._stack[-1][0]
        self.updating[name] = first

    def _element_update(self, target: cst.BaseExpression) -> None:
        """``first[i] = v`` or ``first[i] += v``: an update of the first parameter when it is annotated a Tensor."""
        if not self._stack or self._stack[-1][1] is None or not self._stack[-1][3]:
            return
        base = target.value if isinstance(target, cst.Subscript) else None
        if isinstance(base, cst.Attribute) and base.attr.value == "data":
            base = base.value
        if isinstance(base, cst.Name) and base.value == self._stack[-1][1]:
            self._updated(base.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._element_update(target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._element_update(node.target)

    def visit_Expr(self, node: cst.Expr) -> None:
        if not self._stack or self._stack[-1][1] is None or not isinstance(node.value, cst.Call):
            return
        first, call = self._stack[-1][1], node.value
        receiver = None
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in self.inplace:
            receiver = call.func.value
            while isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) and \
                    receiver.func.attr.value in self.inplace:
                receiver = receiver.func.value
        elif (dotted(call.func) or "").rsplit(".", 1)[-1] in self.init_names and call.args:
            receiver = call.args[0].value
        if isinstance(receiver, cst.Attribute) and receiver.attr.value == "data":
            receiver = receiver.value
        if isinstance(receiver, cst.Name) and receiver.value == first:
            self._updated(first)


class _ReturnParameter(cst.CSTTransformer):
    """A function's bare ``return`` statements as ``return <name>`` (not those of functions nested in it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        if updated_node.value is not None and not (isinstance(updated_node.value, cst.Name)
                                                   and updated_node.value.value == "None"):
            return updated_node
        return updated_node.with_changes(value=cst.Name(self.name), whitespace_after_return=cst.SimpleWhitespace(" "))


class _Scope:
    """What the port knows of a function's local names: containers (keep ``d[k] = v``) and arrays (``.at``)."""

    def __init__(self, function: bool = False) -> None:
        self.function = function
        self.containers: set[str] = set()
        self.arrays: set[str] = set()
        self.other: set[str] = set()
        self.declared: set[str] = set()   # global / nonlocal: rebinding them is allowed
        self.name = ""                    # the function's
        self.params: set[str] = set()     # its parameters (self and cls left out) ...
        self.returned: set[str] = set()   # ... and the names it returns (alone or in a tuple)
        self.noted: set[str] = set()      # the parameters already reported written in place
        self.grad_blocks = 0              # enclosing torch.no_grad()-style with blocks (in this function)
        self.grad_decorated = False       # the function is decorated with one (@torch.no_grad())

    def kind(self, name: str) -> str:
        if self.function and name not in self.containers | self.arrays | self.other | self.declared:
            return "free"   # a global or closure variable: rebinding it here would make it local
        if name in self.other or (name in self.containers and name in self.arrays):
            return "unknown"
        if name in self.containers:
            return "container"
        if name in self.arrays:
            return "array"
        return "unknown"


class Porter(cst.CSTTransformer):
    """Rewrites one module; ``reports`` lists what it could not convert."""

    def __init__(self, path: str, methods: frozenset[str], inplace: frozenset[str], init_names: frozenset[str],
                 survey: _Survey, rename: tuple[str, str] | None = None,
                 attributes: frozenset[str] = frozenset(), local: _LocalFunctions | None = None,
                 module: cst.Module | None = None) -> None:
        super().__init__()
        self.module = module  # the module being ported: its nodes' line numbers, found when a report needs one
        self._positions: Mapping[cst.CSTNode, CodeRange] | None = None
        self.local = local if local is not None else _LocalFunctions(inplace, init_names)
        self.path = path
        self.methods = methods
        self.inplace = inplace
        self.init_names = init_names
        self.survey = survey
        self.rename = rename
        self.ops = "ops" if "ops" not in survey.used else "jnn_ops"
        self.need_ops = False
        self.need_jnn = False
        self.need_missing = False
        self.reports: list[Report] = []
        self._replace: dict[int, cst.BaseExpression] = {}
        self._method_calls: dict[int, tuple[str, cst.BaseExpression]] = {}  # id(new call) -> (name, receiver)
        self._data_reads: dict[int, cst.BaseExpression] = {}  # id(ops.data(x)) -> x; id(ops.attr(x, "grad")) -> x.grad
        self._grad_reads: set[int] = set()                     # id(ops.attr(x, "grad")), read as it is
        self._keyed: list[cst.CSTNode] = []  # the nodes whose ids key the dicts above, kept so ids stay unique
        self._notes: list[list[str]] = []
        self._targets: set[int] = set()
        self._called: set[int] = set()    # attributes that are called: x.is_floating_point() is a method
        self._fstrings: list[str] = []
        self.attributes = attributes
        self._scopes: list[_Scope] = [_Scope()]
        self._hidden: list[set[str]] = []  # the parameters of enclosing lambdas, the targets of comprehensions
        self._torch_import_lines: list[cst.SimpleStatementLine] = []

    # -- reporting ---------------------------------------------------------------------------------------
    def _line(self, node: cst.CSTNode) -> int:
        """``node``'s line in the source (0 for a node the port made). Positions take a pass over the whole
        module, made only once some report needs one."""
        if self.module is None:
            return 0
        if self._positions is None:
            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        position = self._positions.get(node)
        return 0 if position is None else position.start.line

    def report(self, node: cst.CSTNode, message: str, comment: bool = True) -> None:
        self.reports.append(Report(self.path, self._line(node), message))
        if comment and self._notes:
            self._notes[-1].append(message)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._notes.append([])
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        result = super().on_leave(original_node, updated_node)
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            notes = self._notes.pop()
            if notes:
                lines = [cst.EmptyLine(comment=cst.Comment("# jnn.port: " + " ".join(n.split())))
                         for n in dict.fromkeys(notes)]
                if isinstance(result, cst.FlattenSentinel):
                    first, *rest = result.nodes
                    result = cst.FlattenSentinel([first.with_changes(leading_lines=[*first.leading_lines, *lines]),
                                                  *rest])
                elif isinstance(result, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) and hasattr(
                        result, "leading_lines"):
                    result = result.with_changes(leading_lines=[*result.leading_lines, *lines])
        if (isinstance(original_node, cst.SimpleStatementLine) and len(original_node.body) == 1
                and isinstance(original_node.body[0], (cst.Import, cst.ImportFrom))
                and _is_torch_import(original_node.body[0])):
            self._torch_import_lines.extend(result.nodes if isinstance(result, cst.FlattenSentinel) else [result])
        return result

    # -- names -------------------------------------------------------------------------------------------
    def torch_name(self, node: cst.BaseExpression) -> str | None:
        """The torch qualified name ``node`` refers to through this file's imports, or None."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if self._local(head):
            return None
        if head in self.survey.roots:
            full = "torch"
        elif head in self.survey.aliases:
            full = self.survey.aliases[head]
        else:
            return None
        return f"{full}.{rest}" if rest else full

    def _local(self, name: str) -> bool:
        """Whether ``name`` is bound in an enclosing function (a parameter, an assignment), lambda or comprehension,
        hiding the import of that name (x-transformers' ``def max_neg_value(tensor)`` after ``from torch import
        tensor``)."""
        return any(name in hidden for hidden in self._hidden) or any(
            scope.function and name in scope.containers | scope.arrays | scope.other and name not in scope.declared
            for scope in self._scopes)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        params = node.params
        named = [*params.posonly_params, *params.params, *params.kwonly_params, params.star_arg, params.star_kwarg]
        self._hidden.append({p.name.value for p in named if isinstance(p, cst.Param)})

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda) -> cst.BaseExpression:
        self._hidden.pop()
        return updated_node

    def _visit_comprehension(self, node: cst.BaseComp | cst.DictComp) -> None:
        names: set[str] = set()
        comp: cst.CompFor | None = node.for_in
        while comp is not None:
            names.update(_names(comp.target))
            comp = comp.inner_for_in
        self._hidden.append(names)

    def _leave_comprehension(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        self._hidden.pop()
        return updated_node

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension
    leave_ListComp = leave_SetComp = leave_DictComp = leave_GeneratorExp = _leave_comprehension

    def render(self, target: str) -> cst.BaseExpression:
        if target == OPS or target.startswith(OPS + "."):
            self.need_ops = True
            return _expr(self.ops + target[len(OPS):])
        self.need_jnn = True
        return _expr(target)

    def _check(self, node: cst.CSTNode, torch_name: str, target: str | None) -> None:
        if target is None or not exists(target):
            self.report(node, f"{torch_name} has no jnn counterpart" + (f" ({target} is missing)" if target else ""))

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        name = self.torch_name(node)
        if name is None:
            return True
        target = jnn_name(name)
        self._check(node, name, target)
        if target is not None and not exists(target):
            placeholder = self._placeholder(node, name)
            if placeholder is not None:
                self._replace[id(node)] = placeholder
                return False
        if dotted(node).split(".")[0] in self.survey.roots and target is not None:
            self._replace[id(node)] = self.render(target)
        return False

    def _placeholder(self, node: cst.Attribute, name: str) -> cst.BaseExpression | None:
        """``missing("torch.x.y")`` for a torch name jnn lacks, so that the module still imports (class bases,
        annotations, decorators); a store ``torch.x.y = v`` keeps ``y`` when ``torch.x`` exists (None: render as is)."""
        attr = None
        if id(node) in self._targets:
            name, attr = name.rsplit(".", 1)
            parent = jnn_name(name)
            if parent is None or exists(parent):
                return None
        literal = self._string(name)
        if literal is None:
            return None
        self.need_missing = True
        expr: cst.BaseExpression = cst.Call(func=cst.Name("missing"), args=[cst.Arg(literal)])
        return expr if attr is None else cst.Attribute(value=expr, attr=cst.Name(attr))

    def _string(self, text: str) -> cst.SimpleString | None:
        """``text`` as a string literal whose quotes do not end the f-strings around this point (None if both
        kinds are taken)."""
        used = "".join(self._fstrings)
        quote = '"' if '"' not in used else "'" if "'" not in used else None
        return None if quote is None else cst.SimpleString(f"{quote}{text}{quote}")

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.survey.roots and not self._local(node.value):
            self._replace[id(node)] = self.render(OPS)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self._replace.get(id(original_node), updated_node)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        if id(original_node) in self._replace:
            return self._replace[id(original_node)]
        name = original_node.attr.value
        if (name in self.attributes and self.survey.uses_torch and id(original_node) not in self._targets | self._called
                and not self._is_namespace(original_node.value) and self.torch_name(original_node.value) is None):
            self.need_ops = True
            literal = self._string(name)
            if literal is not None:
                comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                call = cst.Call(func=_expr(f"{self.ops}.attr"), args=[
                    cst.Arg(updated_node.value, comma=comma), cst.Arg(literal)])
                if name == "grad":  # t.grad.add_(g) stores its result back: t.grad = ops.add_(ops.attr(t, ...), g)
                    self._data_reads[id(call)] = updated_node
                    self._grad_reads.add(id(call))
                    self._keyed.append(call)
                return call
        if (original_node.attr.value == "data" and self.survey.uses_torch
                and not self._is_namespace(original_node.value)  # self.data, esm.data (a module's submodule)
                and self.torch_name(original_node.value) is None):
            self.need_ops = True
            call = cst.Call(func=_expr(f"{self.ops}.data"), args=[cst.Arg(updated_node.value)])
            self._data_reads[id(call)] = updated_node.value
            self._keyed.append(call)
            return call
        return updated_node

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self._fstrings.append(node.start)

    def leave_FormattedString(self, original_node: cst.FormattedString,
                              updated_node: cst.FormattedString) -> cst.FormattedString:
        self._fstrings.pop()
        return updated_node

    def visit_Call(self, node: cst.Call) -> None:
        self._called.add(id(node.func))

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets.add(id(node.target))
        for element in _elements(node.target):  # a, b.requires_grad = ...: b.requires_grad stays an attribute
            self._targets.add(id(element))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets.add(id(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets.add(id(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        self._targets.add(id(node.target))

    def _undata(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """``x`` for the ``ops.data(x)`` that replaced ``x.data``; in a tuple or list target, for each element
        (``w.data, meta = f()`` assigns ``w``)."""
        if isinstance(node, (cst.Tuple, cst.List)):
            return node.with_changes(elements=[
                e.with_changes(value=self._undata(e.value)) for e in node.elements])
        if isinstance(node, cst.StarredElement):
            return node.with_changes(value=self._undata(node.value))
        return self._data_reads.get(id(node), node)

    # -- imports -----------------------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def _renamed(self, name: str) -> str:
        if self.rename and (name == self.rename[0] or name.startswith(self.rename[0] + ".")):
            return self.rename[1] + name[len(self.rename[0]):]
        return name

    def _missing(self, node: cst.CSTNode, local: str, torch_name: str) -> cst.SimpleStatementLine:
        self.need_missing = True
        self.report(node, f"{torch_name} has no jnn counterpart; '{local}' raises NotImplementedError when used")
        return cst.parse_statement(f'{local} = missing("{torch_name}")\n')

    def _bind(self, local: str, target: str) -> list[cst.SimpleStatementLine]:
        """``local = <target>`` for a jnn name below an object, which ``from parent import leaf`` cannot reach."""
        if target.startswith(OPS + "."):
            self.need_ops = True
            return [cst.parse_statement(f"{local} = {self.ops}{target[len(OPS):]}\n")]
        parts = target.split(".")
        module = next(".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if is_module(".".join(parts[:i])))
        return [cst.parse_statement(f"import {module}\n"), cst.parse_statement(f"{local} = {target}\n")]

    def _renamed_import(self, full: str, asname: str | None) -> list[cst.SimpleStatementLine]:
        """``import full [as asname]`` of a module that is not torch's, following the package's rename: the name
        the statement binds stays the same (``import torchvision`` -> ``import torchvision_jnn as torchvision``,
        since the code goes on to use ``torchvision.ops...``)."""
        renamed = self._renamed(full)
        if asname is not None or renamed == full:
            return [cst.parse_statement(f"import {renamed}" + (f" as {asname}" if asname else "") + "\n")]
        head, new_head = full.split(".")[0], renamed.split(".")[0]
        lines = [cst.parse_statement(f"import {renamed}\n")] if "." in full else []
        return lines + [cst.parse_statement(f"import {new_head} as {head}\n")]

    def _port_import(self, node: cst.Import) -> list[cst.SimpleStatementLine] | None:
        if not any(_import_name(a.name).split(".")[0] == "torch" or _import_name(a.name) in OTHER_MODULES
                   for a in node.names):
            if self.rename is None or all(self._renamed(_import_name(a.name)) == _import_name(a.name)
                                          for a in node.names):
                return None
        lines = []
        for alias in node.names:
            full = _import_name(alias.name)
            if full in OTHER_MODULES and alias.asname is not None:  # import einops.layers.torch as L
                lines.append(cst.parse_statement(f"import {OTHER_MODULES[full]} as {alias.asname.name.value}\n"))
                continue
            if full in OTHER_MODULES:  # binds the package (einops), whose other modules are kept
                self.report(node, f"'import {full}' is kept (it imports torch); 'import {OTHER_MODULES[full]}' "
                                  "is its jnn counterpart")
            if full.split(".")[0] != "torch":
                lines += self._renamed_import(full, alias.asname.name.value if alias.asname else None)
                continue
            if alias.asname is None:          # binds the name torch: its uses are rewritten one by one
                target = jnn_name(full)
                if full != "torch" and (target is None or not exists(target)):
                    self.report(node, f"{full} has no jnn counterpart", comment=False)
                lines.append(cst.parse_statement("import jnn\n"))
                continue
            local = alias.asname.name.value
            target = jnn_name(full)
            if target is not None and is_module(target):
                lines.append(cst.parse_statement(f"import {target} as {local}\n"))
            elif target is not None and exists(target):  # an object standing for a torch module: ops.distributed
                lines.extend(self._bind(local, target))
            else:
                lines.append(self._missing(node, local, full))
        return lines

    def _port_import_from(self, node: cst.ImportFrom) -> list[cst.SimpleStatementLine] | None:
        if node.relative or node.module is None:
            return None
        module = _import_name(node.module)
        if module in OTHER_MODULES:
            return [cst.SimpleStatementLine([node.with_changes(module=_expr(OTHER_MODULES[module]))])]
        if module.split(".")[0] != "torch":
            if self.rename is None or self._renamed(module) == module:
                return None
            return [cst.SimpleStatementLine([node.with_changes(module=_expr(self._renamed(module)))])]
        if isinstance(node.names, cst.ImportStar):
            target = jnn_name(module)
            self.report(node, f"'from {module} import *' is ported as 'from {target} import *'")
            return [cst.parse_statement(f"from {target} import *\n")]
        lines: list[cst.SimpleStatementLine] = []
        group: list[str] = []
        group_parent = None

        def flush() -> None:
            if group:
                lines.append(cst.parse_statement(f"from {group_parent} import {', '.join(group)}\n"))
                group.clear()

        for alias in node.names:
            name = alias.name.value
            local = alias.asname.name.value if alias.asname else name
            full = f"{module}.{name}"
            target = jnn_name(full)
            if target is None or not exists(target):
                flush()
                lines.append(self._missing(node, local, full))
                continue
            if "." not in target:
                flush()
                lines.append(cst.parse_statement(f"import {target}" + (f" as {local}" if local != target else "")
                                                 + "\n"))
                continue
            parent, leaf = target.rsplit(".", 1)
            if not is_module(parent):         # an object's attribute (jnn.ops.jit.Final): not importable by name
                flush()
                lines.extend(self._bind(local, target))
                continue
            if parent != group_parent:
                flush()
                group_parent = parent
            group.append(leaf if leaf == local else f"{leaf} as {local}")
        flush()
        return lines

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine):
        if len(updated_node.body) != 1 or not isinstance(updated_node.body[0], (cst.Import, cst.ImportFrom)):
            return updated_node
        statement = updated_node.body[0]
        lines = (self._port_import(statement) if isinstance(statement, cst.Import)
                 else self._port_import_from(statement))
        if lines is None:
            return updated_node
        first = lines[0].with_changes(leading_lines=updated_node.leading_lines,
                                      trailing_whitespace=updated_node.trailing_whitespace)
        lines = [first, *lines[1:]]
        return cst.FlattenSentinel(lines) if len(lines) > 1 else lines[0]

    # -- tensor methods ----------------------------------------------------------------------------------
    def _is_namespace(self, node: cst.BaseExpression) -> bool:
        """Whether a method-call receiver is surely not a torch tensor (a module, self, super(), a literal, a NumPy
        value made in place)."""
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.List, cst.Dict,
                             cst.Set, cst.Tuple, cst.ListComp, cst.DictComp, cst.SetComp, cst.Integer, cst.Float)):
            return True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "super":
            return True
        if isinstance(node, cst.Name) and node.value in ("self", "cls"):
            return True
        name = dotted(node)
        if name is not None and name.split(".")[0] in self.survey.imported | self.survey.roots:
            return True
        return self._numpy_made(node)

    def _numpy_made(self, node: cst.BaseExpression) -> bool:
        """Whether an expression is surely a NumPy value, whose methods are NumPy's (``max``, ``repeat`` and
        ``transpose`` differ from torch's): a call of a numpy function (``np.arange(n)``), arithmetic with one
        (torch code mixes NumPy arrays with numbers, not with tensors), an element, an attribute (``.real``, ``.T``)
        or a method's result of one."""
        if isinstance(node, cst.Call):
            name = dotted(node.func)
            if name is not None and name.split(".")[0] in self.survey.numpy:
                return True
            return isinstance(node.func, cst.Attribute) and self._numpy_made(node.func.value)
        if isinstance(node, (cst.Subscript, cst.Attribute)):
            return self._numpy_made(node.value)
        if isinstance(node, cst.BinaryOperation):
            return self._numpy_made(node.left) or self._numpy_made(node.right)
        if isinstance(node, cst.UnaryOperation):
            return self._numpy_made(node.expression)
        return False

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if not (self.survey.uses_torch and isinstance(func, cst.Attribute)):
            return updated_node
        name = func.attr.value
        if name not in self.methods or self.torch_name(func) is not None or self._is_namespace(func.value):
            return updated_node
        if isinstance(func.value, cst.Name) and self._scopes[-1].kind(func.value.value) == "container":
            return updated_node  # a list, dict or set this function built: list.index, set.add, dict.copy...
        receiver = updated_node.func.value
        if name in self.inplace and id(receiver) not in self._grad_reads:
            receiver = self._undata(receiver)
        self.need_ops = True
        receiver_arg = cst.Arg(receiver, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                               if updated_node.args else cst.MaybeSentinel.DEFAULT)
        call = updated_node.with_changes(func=_expr(f"{self.ops}.{name}"), args=[receiver_arg, *updated_node.args])
        self._method_calls[id(call)] = (name, receiver)
        self._keyed.append(call)
        return call

    # -- grad mode: torch.no_grad() blocks and decorated functions ------------------------------------------
    def _grad_mode(self, expr: cst.BaseExpression) -> bool:
        """Whether ``expr`` is one of torch's grad-mode switches (``torch.no_grad()``, ``@torch.no_grad``, ...)."""
        func = expr.func if isinstance(expr, cst.Call) else expr
        return isinstance(func, (cst.Name, cst.Attribute)) and self.torch_name(func) in _GRAD_MODES

    def visit_With(self, node: cst.With) -> None:
        if any(self._grad_mode(item.item) for item in node.items):
            self._scopes[-1].grad_blocks += 1

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        if any(self._grad_mode(item.item) for item in original_node.items):
            self._scopes[-1].grad_blocks -= 1
        return updated_node

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> cst.AnnAssign:
        if updated_node.value is None:
            return updated_node
        return updated_node.with_changes(value=self._grad_cut(updated_node.value))

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        if updated_node.value is None or not self._scopes[-1].grad_blocks:
            return updated_node  # a decorated function's results are cut by the decorator itself
        return updated_node.with_changes(value=self._grad_cut(updated_node.value))

    def _grad_cut(self, value: cst.BaseExpression) -> cst.BaseExpression:
        """``value`` stored inside a grad-mode block, as ``ops.detach_if_no_grad(value)``: torch's tensors computed
        there require no gradient, so what flows out of the block is cut from JAX's gradient while grad mode is off.
        Names, attributes and literals are left (torch's ``y = x`` there is still ``x``); tuples and lists element
        by element."""
        scope = self._scopes[-1]
        if not (scope.grad_blocks or scope.grad_decorated) or isinstance(
                value, (cst.Name, cst.Attribute, cst.BaseNumber, cst.BaseString, cst.Lambda)):
            return value
        if isinstance(value, (cst.Tuple, cst.List)):
            return value.with_changes(elements=[e.with_changes(value=self._grad_cut(e.value))
                                                if isinstance(e, cst.Element) else e for e in value.elements])
        self.need_ops = True
        return cst.Call(func=_expr(f"{self.ops}.detach_if_no_grad"), args=[cst.Arg(value)])

    # -- statements: in-place methods, init calls, index updates -----------------------------------------
    def _assign(self, target: cst.BaseExpression, value: cst.BaseExpression, node: cst.CSTNode,
                aug: str | None = None, element: bool = False) -> cst.BaseSmallStatement | None:
        """``target = value`` where ``target`` may be an array element: ``a[i] = v`` becomes ``.at[i].set``.

        ``element``: ``value`` is the container ``target`` updated (``ops.at(target)[i].set(v)``); stored into an
        attribute with ``ops.store``, which leaves the attribute alone when it is that very container (a list or
        dict updated in place), as torch's code never assigned it (frozen classes refuse it)."""
        target = self._undata(target)
        if isinstance(target, (cst.Name, cst.Attribute)):
            if aug is not None:
                return None
            if element and isinstance(target, cst.Attribute):
                store = _expr(f"{self.ops}.store(__owner__, {target.attr.value!r}, __value__)")
                store = store.visit(_Substitute(value)).visit(_Substitute(target.value, "__owner__"))
                return cst.Expr(store)
            return cst.Assign(targets=[cst.AssignTarget(target)], value=value)
        if not isinstance(target, cst.Subscript):
            return None
        base = self._undata(target.value)
        kind = self._kind(base, target)
        if kind in ("container", "free"):
            return None
        index = _code(target.with_changes(value=cst.Name("_"))).strip()[1:]  # "[...]" with the original layout
        method = "set" if aug is None else _AUG_AT.get(aug)
        if method is None:  # //=, %=, ...: read, combine, write
            value = cst.BinaryOperation(left=target, operator=_binop(aug), right=_parenthesised(value, atom=True))
            method = "set"
        value = _parenthesised(value)  # d[i] = a, b: one argument
        self.need_ops = True  # ops.at, also for arrays: made on the host when it can, without a compile per shape
        update = _expr(f"{self.ops}.at({_code(base)}){index}.{method}(__value__)")
        update = update.visit(_Substitute(value))
        self._note_argument(base, node)
        return self._assign(base, update, node, element=True)

    def _kind(self, base: cst.BaseExpression, target: cst.Subscript) -> str:
        elements = target.slice
        if len(elements) == 1 and isinstance(elements[0].slice, cst.Index) and isinstance(
                elements[0].slice.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
            return "container"   # a string key
        if isinstance(base, cst.Name):
            return self._scopes[-1].kind(base.value)
        return "unknown"

    def leave_Expr(self, original_node: cst.Expr, updated_node: cst.Expr) -> cst.BaseSmallStatement:
        call = updated_node.value
        if not isinstance(call, cst.Call):
            return updated_node
        if id(call) in self._method_calls:
            name, receiver = self._method_calls[id(call)]
            if name not in self.inplace:
                return updated_node
            while id(receiver) in self._method_calls and self._method_calls[id(receiver)][0] in self.inplace:
                receiver = self._method_calls[id(receiver)][1]
            new = self._assign(receiver, self._grad_cut(call), original_node)
            if new is not None:
                self._note_argument(receiver, original_node, tensor=True)
            if isinstance(receiver, cst.Subscript) and new is not None:
                self.report(original_node, f"in-place '{name}' on an element of '{_short(receiver.value)}': if that "
                                           "is a state_dict(), the module does not change (load_state_dict it back)",
                            comment=False)
            if new is None:
                self.report(original_node, f"in-place '{name}' on '{_short(receiver)}': JAX arrays cannot change "
                                           "in place and this result is not stored anywhere")
                return updated_node
            return new
        if self._is_init(original_node.value) and call.args and call.args[0].star == "":
            arg = self._undata(call.args[0].value)
            if isinstance(arg, (cst.Name, cst.Attribute, cst.Subscript)):
                new = self._assign(arg, call.with_changes(args=[call.args[0].with_changes(value=arg),
                                                                *call.args[1:]]), original_node)
                if new is not None:
                    return new
            name = self.torch_name(original_node.value.func)
            if name is not None and not name.startswith("torch.nn.init."):  # torch.relu_(f(x))
                self.report(original_node, f"in-place '{name}' on '{_short(arg)}': JAX arrays cannot change in "
                                           "place and this result is not stored anywhere")
        return updated_node

    def _is_init(self, call: cst.BaseExpression) -> bool:
        if not isinstance(call, cst.Call):
            return False
        name = self.torch_name(call.func)
        if name is not None:
            if name.startswith("torch.nn.init."):
                return name.rsplit(".", 1)[1] not in _INIT_SKIP
            return name.count(".") == 1 and name[len("torch."):] in self.inplace  # torch.relu_(x): into x
        if isinstance(call.func, cst.Name) and call.func.value in self.local.no_value:
            return call.func.value in self.local.updating   # the file's own helper: only if it updates in place
        last = dotted(call.func)
        return last is not None and last.rsplit(".", 1)[-1] in self.init_names

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.BaseSmallStatement:
        updated_node = updated_node.with_changes(value=self._grad_cut(updated_node.value))
        if len(updated_node.targets) != 1:
            if self.survey.uses_torch and any(
                    isinstance(t.target, cst.Subscript) and self._kind(t.target.value, t.target) not in (
                        "container", "free") for t in original_node.targets):
                self.report(original_node, "chained assignment to an element is left as is (use .at[...].set)")
            return updated_node
        target = updated_node.targets[0].target
        if isinstance(target, (cst.Tuple, cst.List)):
            updated_node = updated_node.with_changes(targets=[cst.AssignTarget(self._undata(target))])
        if isinstance(original_node.targets[0].target, cst.Attribute):
            attr = original_node.targets[0].target
            if attr.attr.value == "data":  # x.data = v: x = ops.set_data(x, v), which also writes x's module slot
                target = self._undata(target)
                if target is updated_node.targets[0].target:  # self.data = v, esm.data = v: not a tensor's
                    return updated_node
                return updated_node.with_changes(targets=[cst.AssignTarget(target)], value=cst.Call(
                    func=_expr(f"{self.ops}.set_data"), args=[_first(target), cst.Arg(updated_node.value)]))
        if isinstance(target, cst.Subscript) and self.survey.uses_torch:
            new = self._assign(target, updated_node.value, original_node)
            if new is not None:
                return new
        return updated_node

    def leave_AugAssign(self, original_node: cst.AugAssign, updated_node: cst.AugAssign) -> cst.BaseSmallStatement:
        updated_node = updated_node.with_changes(value=self._grad_cut(updated_node.value))
        if isinstance(original_node.target, cst.Attribute) and original_node.target.attr.value == "data":
            target = self._undata(updated_node.target)
            method = _AUGMENTED_INPLACE.get(_code(updated_node.operator).strip())
            if target is updated_node.target or method is None:
                return updated_node.with_changes(target=target)
            return cst.Assign(targets=[cst.AssignTarget(target)], value=cst.Call(  # w.data *= s: w = ops.mul_(w, s)
                func=_expr(f"{self.ops}.{method}"), args=[_first(target), cst.Arg(updated_node.value)]))
        if isinstance(updated_node.target, cst.Subscript) and self.survey.uses_torch:
            op = _code(updated_node.operator).strip()
            new = self._assign(updated_node.target, updated_node.value, original_node, aug=op)
            if new is not None:
                return new
        if isinstance(original_node.target, cst.Name) and self.survey.uses_torch and \
                original_node.target.value in self._scopes[-1].arrays:
            self._note_argument(original_node.target, original_node)  # torch's t += x is in place
        return updated_node

    def _note_argument(self, target: cst.BaseExpression, node: cst.CSTNode, tensor: bool = False) -> None:
        """Report a function's tensor parameter (annotated ``Tensor``, or ``tensor``: the receiver of an in-place
        tensor method) written in place and not returned: torch's caller sees the change; a JAX array cannot
        change, so the port's rebinding stays local (whisper's ``logits[:, ids] = -inf`` in a logit filter's
        ``apply``, its greedy decoder's ``sum_logprobs += ...``). The file's own first-parameter updaters return it
        instead (``_LocalFunctions``)."""
        scope = self._scopes[-1]
        if not (isinstance(target, cst.Name) and scope.function):
            return
        name = target.value
        if name not in scope.params or not (tensor or name in scope.arrays) or \
                name in scope.returned | scope.noted | scope.declared or \
                self.local.updating.get(scope.name) == name:
            return
        scope.noted.add(name)
        self.report(node, f"'{scope.name}' updates its argument '{name}' in place: torch's caller sees the change, "
                          "but a JAX array cannot change, and the caller's stays as it was (return it and store it "
                          "where it is called)" + (
                              "; a module's parameter or buffer passed in does take the in-place method's result"
                              if tensor else ""))

    # -- scopes: which local names are containers or arrays --------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = _Scope(function=True)
        params = node.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            hint = _code(param.annotation.annotation) if param.annotation else ""
            if "Tensor" in hint:
                scope.arrays.add(param.name.value)
            elif any(h in hint for h in _CONTAINER_HINTS):
                scope.containers.add(param.name.value)
            else:
                scope.other.add(param.name.value)
        if isinstance(params.star_kwarg, cst.Param):
            scope.containers.add(params.star_kwarg.name.value)
        scope.name = node.name.value
        scope.params = {p.name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params]} - \
            {"self", "cls"}
        node.body.visit(_Classify(scope, self))
        scope.grad_decorated = any(self._grad_mode(d.decorator) for d in node.decorators)
        self._scopes.append(scope)

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._scopes.pop()
        name = original_node.name.value
        params = [*original_node.params.posonly_params, *original_node.params.params]
        first = self.local.updating.get(name) if name in self.local.no_value else None
        if first is None or not params or params[0].name.value != first:
            return updated_node
        body = updated_node.body.visit(_ReturnParameter(first))
        self.report(original_node, f"'{name}' updates '{first}' in place: it returns '{first}' now, and its calls "
                                   "store the result", comment=False)
        if isinstance(body, cst.IndentedBlock):
            last = body.body[-1] if body.body else None
            if not (isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], (cst.Return, cst.Raise))):
                body = body.with_changes(body=[*body.body, cst.parse_statement(f"return {first}\n")])
        return updated_node.with_changes(body=body)

    def visit_Module(self, node: cst.Module) -> None:
        node.visit(_Classify(self._scopes[0], self, module_level=True))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        wanted = []
        if self.need_ops and _uses_name(updated_node, self.ops):
            wanted.append(f"from jnn import ops as {self.ops}" if self.ops != "ops" else "from jnn import ops")
        if self.need_missing:
            wanted.append("from jnn.port import missing")
        body = list(updated_node.body)
        ids = {id(line) for line in self._torch_import_lines}
        at = next((i for i, s in enumerate(body) if id(s) in ids), None)
        if self.need_jnn and not any(_is_root_import(line) for line in body):  # torch came from a star import
            wanted.append("import jnn")
        if at is not None and _is_root_import(body[at]):
            if wanted and not self.need_jnn:
                body[at] = cst.parse_statement(wanted.pop(0) + "\n").with_changes(
                    leading_lines=body[at].leading_lines, trailing_whitespace=body[at].trailing_whitespace)
            at += 1
        elif at is not None and wanted:  # before the first torch import, taking over the comments above it
            first = cst.parse_statement(wanted[0] + "\n").with_changes(leading_lines=body[at].leading_lines)
            body[at] = body[at].with_changes(leading_lines=[])
            body.insert(at, first)
            wanted.pop(0)
            at += 1
        if not wanted:
            return updated_node.with_changes(body=body)
        new = [cst.parse_statement(w + "\n") for w in wanted]
        if at is None:
            at = _after_header(body)
        return updated_node.with_changes(body=[*body[:at], *new, *body[at:]])


class _Classify(cst.CSTVisitor):
    """Sorts a scope's assigned names into containers and arrays, and collects the names it returns (nested
    functions are their own scopes)."""

    def __init__(self, scope: _Scope, porter: Porter, module_level: bool = False) -> None:
        self.scope = scope
        self.porter = porter
        self.module_level = module_level

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return not self.module_level

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self._add(target.target.value, node.value)
            elif isinstance(target.target, (cst.Tuple, cst.List)):
                for element in target.target.elements:
                    if isinstance(element.value, cst.Name):
                        self.scope.other.add(element.value.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Name):
            hint = _code(node.annotation.annotation)
            if "Tensor" in hint:
                self.scope.arrays.add(node.target.value)
            elif any(h in hint for h in _CONTAINER_HINTS):
                self.scope.containers.add(node.target.value)
            elif node.value is not None:
                self._add(node.target.value, node.value)

    def visit_For(self, node: cst.For) -> None:
        for name in _names(node.target):
            self.scope.other.add(name)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        for name in _names(node.target):
            self.scope.other.add(name)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            for name in _names(node.asname.name):
                self.scope.other.add(name)

    def visit_Return(self, node: cst.Return) -> None:  # the names a function returns, alone or in a tuple
        values = [e.value for e in node.value.elements] if isinstance(node.value, (cst.Tuple, cst.List)) else \
            [node.value]
        self.scope.returned.update(v.value for v in values if isinstance(v, cst.Name))

    def visit_Global(self, node: cst.Global) -> None:
        self.scope.declared.update(n.name.value for n in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.scope.declared.update(n.name.value for n in node.names)

    def _add(self, name: str, value: cst.BaseExpression) -> None:
        if isinstance(value, (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)):
            self.scope.containers.add(name)
            return
        if isinstance(value, cst.Call):
            callee = dotted(value.func)
            if callee is not None and callee.rsplit(".", 1)[-1] in _CONTAINER_CALLS:
                self.scope.containers.add(name)
                return
            torch_name = self.porter.torch_name(value.func)
            target = jnn_name(torch_name) if torch_name else None
            if target is not None and target.startswith(OPS + "."):
                self.scope.arrays.add(name)
                return
            if (isinstance(value.func, cst.Attribute) and value.func.attr.value in self.porter.methods
                    and not self.porter._is_namespace(value.func.value)
                    and value.func.attr.value not in ("tolist", "item", "size", "dim", "numel", "split", "chunk",
                                                      "unbind", "type", "to", "copy")):
                self.scope.arrays.add(name)
                return
        self.scope.other.add(name)


def _elements(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The targets inside a tuple or list target, at any depth (``a, (b, *c)``: a, b, c)."""
    if isinstance(node, (cst.Tuple, cst.List)):
        return [t for e in node.elements for t in (e.value, *_elements(e.value))]
    if isinstance(node, cst.StarredElement):
        return [node.value, *_elements(node.value)]
    return []


def _names(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for e in node.elements for n in _names(e.value)]
    return []


class _Substitute(cst.CSTTransformer):
    def __init__(self, value: cst.BaseExpression, name: str = "__value__") -> None:
        self.value = value
        self.name = name

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.value if updated_node.value == self.name else updated_node


_ATOMS = (cst.Name, cst.Attribute, cst.Subscript, cst.Call, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
          cst.ConcatenatedString, cst.FormattedString, cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp,
          cst.SetComp)


def _parenthesised(node: cst.BaseExpression, atom: bool = False) -> cst.BaseExpression:
    """``node`` in parentheses where it is a bare tuple (as a call argument it would be several) or a yield, or with
    ``atom`` anything but an atom (as an operand: ``x[i] //= a + b`` reads ``x[i] // (a + b)``)."""
    if getattr(node, "lpar", None):
        return node
    if isinstance(node, (cst.Tuple, cst.Yield)) or (atom and not isinstance(node, _ATOMS)):
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _binop(aug: str) -> cst.BaseBinaryOp:
    return {"//=": cst.FloorDivide(), "%=": cst.Modulo(), "&=": cst.BitAnd(), "|=": cst.BitOr(),
            "^=": cst.BitXor(), "<<=": cst.LeftShift(), ">>=": cst.RightShift(), "@=": cst.MatrixMultiply()}[aug]


def _is_torch_import(node: cst.Import | cst.ImportFrom) -> bool:
    if isinstance(node, cst.Import):
        return any(_import_name(a.name).split(".")[0] == "torch" for a in node.names)
    return not node.relative and node.module is not None and _import_name(node.module).split(".")[0] == "torch"


def _uses_name(node: cst.CSTNode, name: str) -> bool:
    found = []

    class Find(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            if n.value == name:
                found.append(n)

    node.visit(Find())
    return bool(found)


def _is_root_import(line: cst.CSTNode) -> bool:
    """Whether ``line`` is the ``import jnn`` that replaced an ``import torch``."""
    return (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and isinstance(line.body[0], cst.Import)
            and _code(line.body[0]).strip() == "import jnn")


def _after_header(body: Sequence[cst.BaseStatement]) -> int:
    """Index after the module docstring and ``from __future__`` imports."""
    at = 0
    for i, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        small = statement.body[0]
        if i == 0 and isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString,
                                                                                cst.ConcatenatedString)):
            at = 1
        elif isinstance(small, cst.ImportFrom) and small.module is not None and _import_name(
                small.module) == "__future__":
            at = i + 1
        else:
            break
    return at


def port_module(text: str, path: str, methods: frozenset[str], inplace: frozenset[str],
                init_names: frozenset[str], rename: tuple[str, str] | None = None) -> tuple[str, list[Report]]:
    """Port one module's source; returns the new source and the reports."""
    if "torch" not in text and (rename is None or rename[0] not in text):
        return text, []  # nothing to port and no import to rename: no need to parse (a quarter of transformers)
    module = cst.parse_module(text)
    survey = _Survey()
    module.visit(survey)
    if not survey.uses_torch and rename is None:
        return text, []
    from jnn.ops._port import DTYPE_ATTRIBUTES, TENSOR_ATTRIBUTES

    local = _LocalFunctions(inplace, init_names)
    module.visit(local)
    porter = Porter(path, methods, inplace, init_names, survey, rename, TENSOR_ATTRIBUTES | DTYPE_ATTRIBUTES, local,
                    module)
    new = module.visit(porter)
    return new.code, porter.reports
