"""The static gate for untrusted (LLM-written) factor code: :func:`validate_source` checks the
source against allow-lists before anything runs (the rules are listed in :mod:`.sandbox`).

Also :class:`SandboxError`, the one error type every layer of the sandbox raises. Imports only the
standard library and numpy: the sandbox child loads this file by path.
"""

from __future__ import annotations

import ast
import inspect
import math
from typing import Any

import numpy as np

ENTRY_POINT = "compute_factors"
ERROR_KINDS = ("refused", "unjailed", "timeout", "memory", "exception", "bad_output", "crashed")
MAX_SOURCE_CHARS = 50_000
MAX_NESTING = 100  # AST depth; CPython's compiler recurses once per level

DENIED_NAMES = frozenset(
    "exec eval compile open input getattr setattr delattr hasattr globals locals vars dir "
    "breakpoint help type object super memoryview classmethod staticmethod property exit quit "
    "__import__".split()
)
NUMPY_DTYPES = frozenset("float32 float64 int32 int64 bool_".split())
NUMPY_CONSTANTS = frozenset("pi e inf nan newaxis".split())
NUMPY_FUNCTIONS = frozenset(
    """array asarray zeros zeros_like ones ones_like full full_like arange linspace eye identity
    concatenate stack hstack vstack column_stack expand_dims squeeze reshape ravel transpose moveaxis
    swapaxes atleast_1d atleast_2d broadcast_to tile repeat where select clip take take_along_axis
    abs absolute sign sqrt square cbrt exp expm1 exp2 log log1p log2 log10 power sin cos tan arcsin
    arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh hypot deg2rad rad2deg degrees
    radians floor ceil round rint trunc mod fmod remainder divide true_divide floor_divide multiply
    add subtract negative reciprocal maximum minimum fmax fmin heaviside sinc interp digitize
    searchsorted sum mean std var min max amin amax prod cumsum cumprod diff median percentile
    quantile average ptp count_nonzero all any nansum nanmean nanmax nanmin argmax argmin argsort
    sort dot matmul inner outer einsum cross vdot isfinite isnan isinf nan_to_num logical_and
    logical_or logical_not logical_xor greater less equal not_equal greater_equal less_equal isclose
    errstate linalg.norm""".split()
)
NUMPY_NAMES = NUMPY_DTYPES | NUMPY_CONSTANTS | NUMPY_FUNCTIONS
MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))
DTYPE_NAMES = frozenset({"float", "int", "bool"} | {f"np.{n}" for n in NUMPY_DTYPES})
# the builtins the child gives the code (sandbox.py); with the dtype names and the modules, these
# names can never be rebound, so `float` in a dtype slot is always the builtin
SAFE_BUILTIN_NAMES = (
    "abs all any bool dict divmod enumerate filter float int isinstance iter len list map max min next pow "
    "range repr reversed round set slice sorted str sum tuple zip "
    "ArithmeticError Exception FloatingPointError IndexError KeyError ValueError ZeroDivisionError"
).split()
PROTECTED_NAMES = frozenset(SAFE_BUILTIN_NAMES) | {n for n in DTYPE_NAMES if "." not in n} | {"np", "math"}
# call keywords numpy reads as dtypes (ufuncs take a signature of dtypes)
DTYPE_KEYWORDS = ("dtype", "signature", "sig")
VALUE_PROPERTIES = frozenset("shape ndim size dtype T real imag flat".split())
VALUE_METHODS = frozenset(
    """astype reshape ravel flatten squeeze transpose swapaxes copy clip round fill sum mean std var
    min max prod cumsum cumprod any all argmin argmax argsort sort nonzero dot trace diagonal conj
    conjugate item tolist repeat take
    append extend insert pop index count keys values items get update remove reverse setdefault""".split()
)
VALUE_ATTRIBUTES = VALUE_PROPERTIES | VALUE_METHODS
# positional index of the dtype parameter of array methods (numpy's C methods have no signature)
METHOD_DTYPE_SLOTS = {
    "astype": 0,
    "sum": 1,
    "mean": 1,
    "std": 1,
    "var": 1,
    "prod": 1,
    "cumsum": 1,
    "cumprod": 1,
    "trace": 3,
}
_MODULES = ("np", "math")
_ALLOWED_NODES = (
    ast.Module,
    ast.FunctionDef,
    ast.arguments,
    ast.arg,
    ast.Return,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.For,
    ast.While,
    ast.If,
    ast.With,
    ast.withitem,
    ast.Raise,
    ast.Try,
    ast.ExceptHandler,
    ast.Assert,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Expr,
    ast.BoolOp,
    ast.NamedExpr,
    ast.BinOp,
    ast.UnaryOp,
    ast.Lambda,
    ast.IfExp,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.Compare,
    ast.Call,
    ast.keyword,
    ast.FormattedValue,
    ast.JoinedStr,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Starred,
    ast.Name,
    ast.List,
    ast.Tuple,
    ast.Slice,
    ast.expr_context,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)


def _numpy_object(path: str) -> Any:
    obj: Any = np
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _signatures() -> tuple[dict[str, int | None], dict[str, int | None]]:
    """For each allowed numpy function, the positional index of its ``dtype`` parameter (``None``
    when dtype is keyword-only or absent) and how many positional arguments its signature takes
    (``None``: any number). A call passing more is refused: numpy's C code takes some keyword-only
    parameters positionally (``np.arange(0, 3, 1, "O")``). A function whose parameters cannot be
    read is left out of the allow-list (fail closed)."""
    slots: dict[str, int | None] = {}
    counts: dict[str, int | None] = {}
    for path in sorted(NUMPY_FUNCTIONS):
        func = _numpy_object(path)
        if isinstance(func, np.ufunc):  # inputs, then outputs; dtype and signature by keyword only
            slots[path], counts[path] = None, func.nin + func.nout
            continue
        if isinstance(func, type):  # errstate: keywords only
            slots[path], counts[path] = None, 0
            continue
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            continue
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        slots[path] = positional.index("dtype") if "dtype" in positional else None
        counts[path] = None if any(p.kind == p.VAR_POSITIONAL for p in params) else len(positional)
    return slots, counts


NUMPY_DTYPE_SLOTS, NUMPY_POSITIONAL_COUNTS = _signatures()


class SandboxError(RuntimeError):
    """Untrusted code was refused or failed. ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, message: str):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown sandbox error kind {kind!r}")
        super().__init__(f"[{kind}] {message}")
        self.kind = kind
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


# ---------------------------------------------------------------------------------- validation
def validate_source(source: str, entry_point: str = ENTRY_POINT) -> ast.Module:
    """Parse and check ``source`` against the rules in the module docstring; raise
    ``SandboxError("refused", ...)`` naming the first offending line, and nothing else."""
    if not isinstance(source, str) or not source.strip():
        raise SandboxError("refused", "the source is empty")
    if len(source) > MAX_SOURCE_CHARS:
        raise SandboxError("refused", f"the source has {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source, filename="<llm-factors>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise SandboxError("refused", f"the source does not parse: {err}") from None
    _check_nesting(tree)
    try:
        _Checker().visit(tree)
    except RecursionError:
        raise SandboxError("refused", "the code is nested too deeply to check") from None
    for stmt in tree.body:
        docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if not (docstring or isinstance(stmt, (ast.FunctionDef, ast.Assign, ast.AnnAssign))):
            _refuse(
                stmt, f"only function definitions and assignments may appear at module level, not {type(stmt).__name__}"
            )
    entries = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == entry_point]
    if not entries:
        raise SandboxError("refused", f"no top-level function `def {entry_point}(obs, act):` is defined")
    args = entries[-1].args
    if len(args.posonlyargs) + len(args.args) != 2 or args.vararg or args.kwarg or args.kwonlyargs:
        _refuse(entries[-1], f"`{entry_point}` must take exactly two positional parameters (obs, act)")
    return tree


def _refuse(node: ast.AST, why: str) -> None:
    raise SandboxError("refused", f"line {getattr(node, 'lineno', '?')}: {why}")


def _check_nesting(tree: ast.AST) -> None:
    """Refuse trees deeper than :data:`MAX_NESTING` (iteratively, so the check cannot overflow)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            _refuse(node, f"the code is nested more than {MAX_NESTING} levels deep (split long expressions into steps)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _attribute_path(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    parts = []
    base: ast.expr = node
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    return base, parts[::-1]


def _module_path(node: ast.expr) -> tuple[str, str] | None:
    """``("np", "linalg.norm")`` for ``np.linalg.norm``; ``None`` for anything not on a module."""
    if not isinstance(node, ast.Attribute):
        return None
    base, parts = _attribute_path(node)
    if isinstance(base, ast.Name) and base.id in _MODULES:
        return base.id, ".".join(parts)
    return None


def _is_numeric_dtype(node: ast.expr) -> bool:
    """Whether ``node`` is an allowed dtype: ``None``, a name in :data:`DTYPE_NAMES` or a string
    naming a plain numeric (bool, integer, float) dtype."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return True
        if not isinstance(node.value, str) or len(node.value) > 16:
            return False
        try:
            dtype = np.dtype(node.value)
        except (TypeError, ValueError, SyntaxError):
            return False
        return dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None
    if isinstance(node, ast.Name):
        return node.id in DTYPE_NAMES
    module = _module_path(node)
    return module is not None and f"{module[0]}.{module[1]}" in DTYPE_NAMES


class _Checker(ast.NodeVisitor):
    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            _refuse(
                node,
                f"`{type(node).__name__}` is not allowed (imports, classes, global, del, yield, async and match are "
                f"refused)",
            )
        super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            _refuse(node, "decorators are not allowed")
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_binding(node, node.arg)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):  # assignment, for/comprehension target, walrus, unpacking
            self._check_binding(node, node.id)
        self._check_name(node, node.id)
        if node.id in _MODULES:
            _refuse(node, f"`{node.id}` may only be used as `{node.id}.<function>`")

    def visit_Call(self, node: ast.Call) -> None:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            _refuse(node, "`*args` and `**kwargs` in calls are not allowed; pass arguments one by one")
        slot = self._dtype_slot(node.func)
        dtypes = [k.value for k in node.keywords if k.arg in DTYPE_KEYWORDS]
        if slot is not None and slot < len(node.args):
            dtypes.append(node.args[slot])
        module = _module_path(node.func)
        most = NUMPY_POSITIONAL_COUNTS.get(module[1]) if module is not None and module[0] == "np" else None
        if most is not None and len(node.args) > most:
            _refuse(node, f"`np.{module[1]}` takes at most {most} positional argument(s); pass the others by keyword")
        for dtype in dtypes:
            if not _is_numeric_dtype(dtype):
                _refuse(
                    dtype,
                    f"dtype must be one of {', '.join(sorted(DTYPE_NAMES))} or a numeric dtype string such as "
                    "'float64' (no object, void, structured or computed dtypes)",
                )
        if isinstance(node.func, ast.Attribute):
            self._check_attribute(node.func, called=True)
        else:
            self.visit(node.func)
        for child in [*node.args, *node.keywords]:
            self.visit(child)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attribute(node, called=False)

    @staticmethod
    def _dtype_slot(func: ast.expr) -> int | None:
        module = _module_path(func)
        if module is not None:
            return NUMPY_DTYPE_SLOTS.get(module[1]) if module[0] == "np" else None
        if isinstance(func, ast.Attribute):
            return METHOD_DTYPE_SLOTS.get(func.attr)
        return None

    def _check_attribute(self, node: ast.Attribute, called: bool) -> None:
        if not isinstance(node.ctx, ast.Load):
            _refuse(node, f"attributes cannot be assigned (`.{node.attr} = ...`)")
        module = _module_path(node)
        if module is not None:
            name, path = module
            if name == "np":
                if path not in NUMPY_NAMES or (path in NUMPY_FUNCTIONS and path not in NUMPY_DTYPE_SLOTS):
                    _refuse(
                        node,
                        f"`np.{path}` is not available: only array maths, no file, memory, process or random access",
                    )
                if path in NUMPY_FUNCTIONS and not called:
                    _refuse(node, f"`np.{path}` may only be called, not passed around or stored")
            elif path not in MATH_NAMES:
                _refuse(node, f"`math.{path}` is not available")
            return
        if node.attr.startswith("_"):
            _refuse(node, f"attribute `{node.attr}` is refused (names starting with `_`)")
        if node.attr in VALUE_METHODS:
            if not called:
                _refuse(node, f"method `.{node.attr}` may only be called, not passed around or stored")
        elif node.attr not in VALUE_PROPERTIES:
            _refuse(node, f"attribute `.{node.attr}` is not allowed; allowed: {', '.join(sorted(VALUE_ATTRIBUTES))}")
        self.visit(node.value)

    def _check_binding(self, node: ast.AST, name: str) -> None:
        """Any binding of ``name``: a def, a parameter, an assignment target, an ``except ... as``."""
        self._check_name(node, name)
        if name in PROTECTED_NAMES:
            _refuse(node, f"`{name}` cannot be rebound (builtins, dtype names and modules keep their meaning)")

    @staticmethod
    def _check_name(node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            _refuse(node, f"name `{name}` is refused (names starting with `_`)")
        if name in DENIED_NAMES:
            _refuse(node, f"`{name}` is refused (no exec/eval/compile, file access or reflection)")
