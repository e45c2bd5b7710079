"""The static gate for untrusted (LLM-written) factor code: :func:`validate_source` checks the
source against allow-lists, not deny-lists, before anything runs. This docstring is the one list
of its rules (:mod:`.sandbox` describes the run-time layers behind it):

- statements: ``def`` (no decorators), assignment, augmented/annotated assignment, ``return``,
  ``if``/``for``/``while``/``break``/``continue``/``pass``, ``with`` (for ``np.errstate``),
  ``try``/``except``, ``raise``, ``assert``, expression statements. Refused: ``import``,
  ``from ... import``, ``class``, ``global``/``nonlocal``, ``del``, ``async``/``await``,
  ``yield``, ``match``, decorators. At module level only ``def``, assignments and a docstring.
  Nesting deeper than :data:`MAX_NESTING` is refused (deep expressions would exhaust the
  compiler's recursion).
- names: any name starting with ``_`` is refused, and so are :data:`DENIED_NAMES` (``exec``,
  ``eval``, ``open``, ``getattr``, ``type``, ``object``, ...). :data:`PROTECTED_NAMES` (every
  builtin the child gives the code, :data:`SAFE_BUILTIN_NAMES` and ``print``; the dtype names
  ``float``, ``int``, ``bool``; ``np`` and ``math``) can never be rebound, by any binding form
  (assignment, parameter, ``for`` or comprehension target, walrus, unpacking, annotation,
  ``except ... as``, ``def``), so ``float`` in a dtype slot is always the builtin. ``np`` and
  ``math`` cannot be used bare; ``str`` and ``repr`` may only be called.
- ``np``/``math``: the dotted path (``np.linalg.norm``) must be in :data:`NUMPY_NAMES` or be a
  public ``math`` name. numpy functions may only be *called* (``f = np.zeros`` is refused), so
  every call of them is visible to the checks below. The ``np.ndarray`` constructor, raw-memory
  routes (``frombuffer``, ``lib.stride_tricks``, ``ctypeslib``, ``memmap``), files, processes
  and randomness are not in the list.
- calls: ``*args`` and ``**kwargs`` in calls are refused (they would hide a dtype slot), and so
  is a numpy call with more positional arguments than its signature takes
  (:data:`NUMPY_POSITIONAL_COUNTS`: numpy's C code reads ``np.arange(0, 3, 1, "O")``'s fourth as
  a dtype although the signature says keyword-only).
- dtypes: wherever a dtype can go (the keywords :data:`DTYPE_KEYWORDS` ``dtype``, and a ufunc's
  ``signature``/``sig``; the positional dtype slot of the numpy function,
  :data:`NUMPY_DTYPE_SLOTS`, or of a :data:`METHOD_DTYPE_SLOTS` method) only
  :data:`DTYPE_NAMES` (``np.float64``, ``float``, ...), ``None`` or a string naming a plain
  numeric dtype (``"float32"``, ``"f8"``) is accepted: no object, void, structured, string or
  computed dtype.
- attributes of anything else: read-only properties in :data:`VALUE_PROPERTIES` and methods in
  :data:`VALUE_METHODS`, the latter only called. Attributes are never assigned. This refuses
  every dunder, frame internals, ``view``, ``data``, ``ctypes``, ``base``, ``tofile`` and
  ``str.format``.
- text and ``None`` never where numpy could take them for data. Operators (``+``, ``*``,
  ``==``, ...) act on arrays directly, not through the numbers-only ``np`` of the child:
  ``obs[:0] + [None]`` makes an object array and ``np.arange(2) * ["ab", "c"]`` reaches numpy's
  string ufuncs. So text (a string or bytes constant, an f-string, ``str(...)``, ``repr(...)``,
  ``+`` of these) is allowed only as a statement of its own (a docstring), an argument of
  ``print`` or of an exception class, an ``assert`` message, the argument of ``float``/``int``/
  ``bool`` (``float("inf")``), or, in a call of a numpy function or array method, a dtype
  (above), ``np.einsum``'s subscripts or an option: a :data:`TEXT_KEYWORDS` keyword
  (``method="nearest"``, ``kind="stable"``, ``np.errstate(divide="ignore")``) or that
  parameter's position (:data:`NUMPY_TEXT_SLOTS`). Never as an operand, a list, tuple, set or dict element or key, a
  subscript, an assigned value, a default or a return value; and since a dict made with keyword
  arguments or a ``**kwargs`` parameter would hold the keywords' names as text, those are
  refused too. With ``str``/``repr`` only called, the code has no other way to make text.
  ``None``, ``...`` and ``np.newaxis`` are allowed only as an index (``obs[:, None]``,
  ``obs[..., 0]``), a slice bound, an argument of a numpy function or array method (``np.clip(x,
  0, None)``, ``axis=None``; not ``.dot``'s operand), of ``print`` or of an exception, or after
  ``is``/``is not``. Complex constants are refused. This rule reads the source, not values:
  ``None`` made at run time (a function that returns nothing, ``print()``, ``dict.get``) and other
  objects (a dict, a function) can still become an object array through an operator, and no
  run-time layer checks operators or array methods. Such an array holds only objects the code
  already has; the numbers-only ``np`` refuses it as an input of any numpy function, and the
  output check refuses it as factors.

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
# `print` is the child's no-op; it takes text, so it cannot be rebound either
PROTECTED_NAMES = frozenset(SAFE_BUILTIN_NAMES) | {n for n in DTYPE_NAMES if "." not in n} | {"np", "math", "print"}
EXCEPTION_NAMES = frozenset(n for n in SAFE_BUILTIN_NAMES if n.endswith(("Error", "Exception")))
TEXT_BUILTINS = ("str", "repr")  # with string constants and f-strings: the code's only ways to make text
# call keywords numpy reads as dtypes (ufuncs take a signature of dtypes)
DTYPE_KEYWORDS = ("dtype", "signature", "sig")
# parameters of the allowed numpy functions and array methods that take text as an option, never
# as data (errstate's modes, percentile's method, sort's kind, memory order, casting, take's mode,
# searchsorted's side, norm's ord, einsum's optimize)
TEXT_KEYWORDS = frozenset("divide over under invalid all method kind order casting mode side ord optimize".split())
VALUE_PROPERTIES = frozenset("shape ndim size dtype T real imag flat".split())
VALUE_METHODS = frozenset(
    """astype reshape ravel flatten squeeze transpose swapaxes copy clip round fill sum mean std var
    min max prod cumsum cumprod any all argmin argmax argsort sort nonzero dot trace diagonal conj
    conjugate item tolist repeat take
    append extend insert pop index count keys values items get update remove reverse setdefault""".split()
)
VALUE_ATTRIBUTES = VALUE_PROPERTIES | VALUE_METHODS
# the methods of lists and dicts, which keep what they are given as data
CONTAINER_METHODS = frozenset(
    "append extend insert pop index count keys values items get update remove reverse setdefault".split()
)
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


def _signatures() -> tuple[dict[str, int | None], dict[str, int | None], dict[str, frozenset[int]]]:
    """For each allowed numpy function, the positional index of its ``dtype`` parameter (``None``
    when dtype is keyword-only or absent), how many positional arguments its signature takes
    (``None``: any number) and the positional indices of its :data:`TEXT_KEYWORDS` parameters. A
    call passing more positional arguments is refused: numpy's C code takes some keyword-only
    parameters positionally (``np.arange(0, 3, 1, "O")``). A function whose parameters cannot be
    read is left out of the allow-list (fail closed)."""
    slots: dict[str, int | None] = {}
    counts: dict[str, int | None] = {}
    text_slots: dict[str, frozenset[int]] = {"einsum": frozenset({0})}  # the subscripts, "ij,ij->i"
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
        options = frozenset(i for i, name in enumerate(positional) if name in TEXT_KEYWORDS)
        text_slots[path] = text_slots.get(path, frozenset()) | options
    return slots, counts, text_slots


NUMPY_DTYPE_SLOTS, NUMPY_POSITIONAL_COUNTS, NUMPY_TEXT_SLOTS = _signatures()


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


def _is_text(node: ast.expr) -> bool:
    """Whether ``node`` makes text: a string or bytes constant, an f-string, ``str(...)``,
    ``repr(...)`` or ``+`` of two of these (names of builtins cannot be rebound)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in TEXT_BUILTINS
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.Add) and _is_text(node.left) and _is_text(node.right)
    return isinstance(node, ast.JoinedStr)


def _is_none(node: ast.expr) -> bool:
    """Whether ``node`` is ``None``, ``...`` or ``np.newaxis`` (which is ``None``)."""
    if isinstance(node, ast.Constant):
        return node.value is None or node.value is Ellipsis
    return _module_path(node) == ("np", "newaxis")


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        # the nodes in a position where text, and where None, cannot become array data, and the
        # names str and repr being called (marked by their parent before they are visited)
        self._text_ok: set[int] = set()
        self._none_ok: set[int] = set()
        self._called: set[int] = set()

    def _allow(self, nodes: list[ast.expr | None], text: bool = False, none: bool = False) -> None:
        for node in nodes:
            if node is not None:
                if text:
                    self._text_ok.add(id(node))
                if none:
                    self._none_ok.add(id(node))

    def _check_value(self, node: ast.expr) -> None:
        """Refuse text, None, ``...`` and complex numbers outside the positions marked for them."""
        if isinstance(node, ast.Constant) and isinstance(node.value, complex):
            _refuse(node, "complex numbers are not allowed (factors are real)")
        if _is_text(node) and id(node) not in self._text_ok:
            _refuse(
                node,
                "text (a string, f-string, str() or repr()) may only be a docstring, an argument of print, of an "
                "exception or of float/int/bool, an assert message, a dtype, np.einsum's subscripts or an option of a "
                f"numpy function or array method ({', '.join(sorted(TEXT_KEYWORDS))}=...), where numpy cannot take it "
                "for data",
            )
        if _is_none(node) and id(node) not in self._none_ok:
            _refuse(
                node,
                "None, ... and np.newaxis may only index (x[:, None]), be an argument of a numpy function or array "
                "method, of print or of an exception, or follow `is`/`is not`: anywhere else numpy could take them "
                "for data",
            )

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            _refuse(
                node,
                f"`{type(node).__name__}` is not allowed (imports, classes, global, del, yield, async and match are "
                f"refused)",
            )
        super().generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        self._check_value(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._check_value(node)
        for part in node.values:  # literal parts and format specs are its own text; the values are not
            self._allow([part if isinstance(part, ast.Constant) else part.format_spec], text=True)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_value(node)
        if _is_text(node):  # allowed here: its parts are text joined by str's +, not numpy's
            self._allow([node.left, node.right], text=True)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:  # a statement on its own, a docstring
        self._allow([node.value], text=True, none=True)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self._allow([node.msg], text=True, none=True)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
            self._allow([node.left, *node.comparators], none=True)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for item in index:
            self._allow([item.lower, item.upper, item.step] if isinstance(item, ast.Slice) else [item], none=True)
        self.generic_visit(node)

    def visit_arguments(self, node: ast.arguments) -> None:
        if node.kwarg is not None:
            _refuse(node.kwarg, "`**kwargs` parameters are not allowed (the keywords' names would become text)")
        self.generic_visit(node)

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
        if node.id in TEXT_BUILTINS and id(node) not in self._called:
            _refuse(node, f"`{node.id}` may only be called, not passed around or stored")
        if node.id in _MODULES:
            _refuse(node, f"`{node.id}` may only be used as `{node.id}.<function>`")

    def visit_Call(self, node: ast.Call) -> None:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            _refuse(node, "`*args` and `**kwargs` in calls are not allowed; pass arguments one by one")
        self._check_value(node)
        self._allow_options(node)
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

    def _allow_options(self, node: ast.Call) -> None:
        """Mark the arguments of ``node`` that may be text or None: those of ``print`` and of an
        exception; of a numpy function or an array method, None anywhere (but ``dot``'s operand) and
        text as a dtype (checked in :meth:`visit_Call`) or a :data:`TEXT_KEYWORDS` option (or
        einsum's subscripts). A helper of the code's own gets neither, whatever its keywords."""
        func, values = node.func, [k.value for k in node.keywords]
        if isinstance(func, ast.Name) and (func.id == "print" or func.id in EXCEPTION_NAMES):
            self._allow([*node.args, *values], text=True, none=True)
            return
        if isinstance(func, ast.Name) and func.id in ("float", "int", "bool"):  # float("inf"): a number
            self._allow(node.args, text=True)
            return
        if isinstance(func, ast.Name) and func.id in TEXT_BUILTINS:
            self._called.add(id(func))
            return
        if node.keywords and (
            (isinstance(func, ast.Name) and func.id == "dict")
            or (isinstance(func, ast.Attribute) and func.attr == "update")
        ):
            _refuse(node, "dict(...) and .update(...) take no keyword arguments here (their names would become text)")
        module = _module_path(func)
        if module is not None:
            if module[0] != "np":
                return
            text_slots = NUMPY_TEXT_SLOTS.get(module[1], frozenset())
            none_args = node.args
        elif isinstance(func, ast.Attribute) and func.attr in VALUE_METHODS and func.attr not in CONTAINER_METHODS:
            text_slots = frozenset()  # array methods are C code: no signature to read option positions from
            none_args = [] if func.attr == "dot" else node.args  # dot's argument is the other operand
        else:
            return
        slot = self._dtype_slot(func)
        dtypes = [k.value for k in node.keywords if k.arg in DTYPE_KEYWORDS]
        self._allow([*dtypes, *([node.args[slot]] if slot is not None and slot < len(node.args) else [])], text=True)
        self._allow([*none_args, *values], none=True)
        self._allow([a for i, a in enumerate(node.args) if i in text_slots], text=True)
        self._allow([k.value for k in node.keywords if k.arg in TEXT_KEYWORDS], text=True)

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
            self._check_value(node)  # np.newaxis
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
