"""``recipes --check``: a static scan of a recipe file's syntax tree (never imported or run)
for constructs that are not portable; the kinds, the opt-out and the limits:
docs/determinism.md ("benchmark-regen recipes --check FILE")."""

from __future__ import annotations

import ast
import enum
import io
import re
import tokenize
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain.errors import RecipeError, os_error_text

if TYPE_CHECKING:
    from toolchain.recipes import Recipe

__all__ = [
    "CheckReport",
    "Finding",
    "Kind",
    "check_file",
    "check_source",
    "recipe_file",
    "recipe_findings",
]


class Kind(enum.Enum):
    """What kind of non-portable construct a finding is."""

    BLAS = "blas"
    FFT = "fft"
    LIBM = "libm"
    FLOAT_REDUCTION = "float-reduction"
    GENERATOR = "generator"
    GLOBAL_RANDOM = "global-random"
    RESIZE = "resize"
    OPT_OUT = "opt-out"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One construct at one place, why it is not portable, and what to do."""

    path: str
    line: int
    column: int
    kind: Kind
    construct: str
    why: str
    fix: str
    exemption: str | None = None
    """The reason given in a ``# portable:`` comment on the construct's lines, if any."""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.location}: [{self.kind.value}] {self.construct}"

    def to_json(self) -> dict[str, object]:
        return {
            "column": self.column,
            "construct": self.construct,
            "exemption": self.exemption,
            "fix": self.fix,
            "kind": self.kind.value,
            "line": self.line,
            "path": self.path,
            "why": self.why,
        }


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """The result of checking one file: open findings and the exempted ones."""

    path: str
    findings: tuple[Finding, ...]
    exempted: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, object]:
        return {
            "exempted": [f.to_json() for f in self.exempted],
            "findings": [f.to_json() for f in self.findings],
            "ok": self.ok,
            "path": self.path,
        }


# -- what is not portable, and why -------------------------------------------------------

_WHY: Mapping[Kind, tuple[str, str]] = {
    Kind.BLAS: (
        "a matrix product's partial sums are rounded in an order chosen by the BLAS kernel "
        "(CPU architecture, OPENBLAS_CORETYPE), its blocking and its thread count",
        "multiply integer arrays (numpy's integer products use no BLAS and are exact), or "
        "integer-valued floats whose partial sums provably stay below 2**24 (float32) or "
        "2**53 (float64), and say so on the line: `# portable: <the bound>`",
    ),
    Kind.FFT: (
        "FFT butterflies round in an order and with SIMD code that differ between numpy / "
        "scipy builds and CPUs",
        "filter with integer arithmetic (an integer convolution) instead",
    ),
    Kind.LIBM: (
        "transcendental functions are not correctly rounded: libm and numpy's SIMD "
        "implementations differ in the last bit between CPUs, OSes and versions "
        "(+ - * / and sqrt are correctly rounded and portable)",
        "use integer or fixed-point arithmetic, or a table of exact values computed once "
        "and shipped with the recipe",
    ),
    Kind.FLOAT_REDUCTION: (
        "a float sum is rounded in an order that depends on memory layout, the axis, "
        "numpy's pairwise blocking and SIMD dispatch, which change between numpy versions "
        "and CPUs",
        "reduce integers: pass an integer dtype= (dtype=np.int64) or call .astype(np.int64) "
        "first; math.fsum is correctly rounded if you need a float sum",
    ),
    Kind.GENERATOR: (
        "NEP 19 keeps bit-generator streams stable but lets numpy change the algorithms of "
        "Generator methods (normal, uniform, integers, choice, ...) between versions; the "
        "non-uniform ones also call libm",
        "draw raw 64-bit words with rng.bit_generator.random_raw(n) and transform them with "
        "integer arithmetic (see the gaussian-noise recipe)",
    ),
    Kind.GLOBAL_RANDOM: (
        "",  # set per finding: numpy's legacy distributions and stdlib random differ
        "use the recipe's rng: rng.bit_generator.random_raw(n) and integer arithmetic",
    ),
    Kind.RESIZE: (
        "without an explicit filter the library's default resampling filter is used, and "
        "defaults have changed between versions (Pillow 7.0: nearest -> bicubic)",
        "pass the filter explicitly, e.g. resample=Image.Resampling.BICUBIC",
    ),
    Kind.OPT_OUT: ("", ""),  # set per finding
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NUMPY_BLAS = _words(
    "dot vdot matmul inner einsum tensordot convolve correlate vecdot matvec vecmat "
    "cov corrcoef polyfit lstsq"
)
_LINALG_PREFIXES = ("numpy.linalg.", "scipy.linalg.", "numpy.matlib.")
_FFT_PREFIXES = ("numpy.fft.", "scipy.fft.", "scipy.fftpack.")
_TRANSCENDENTAL = _words(
    "exp exp2 expm1 log log2 log10 log1p logaddexp logaddexp2 sin cos tan arcsin "
    "arccos arctan arctan2 asin acos atan atan2 sinh cosh tanh arcsinh arccosh "
    "arctanh asinh acosh atanh cbrt hypot sinc i0 power pow float_power erf erfc "
    "gamma lgamma dist"
)
_REDUCTIONS = _words(
    "sum nansum mean nanmean average std nanstd var nanvar cumsum nancumsum prod "
    "nanprod cumprod nancumprod trapezoid trapz"
)
_REDUCTION_METHODS = frozenset({"sum", "mean", "std", "var", "cumsum", "prod", "cumprod"})
_UFUNC_REDUCERS = frozenset({"reduce", "accumulate", "reduceat"})
_GENERATOR_METHODS = _words(
    "integers random choice bytes shuffle permutation permuted beta binomial "
    "chisquare dirichlet exponential f gamma geometric gumbel hypergeometric laplace "
    "logistic lognormal logseries multinomial multivariate_hypergeometric "
    "multivariate_normal negative_binomial noncentral_chisquare noncentral_f normal "
    "pareto poisson power rayleigh standard_cauchy standard_exponential "
    "standard_gamma standard_normal standard_t triangular uniform vonmises wald "
    "weibull zipf"
)
# numpy.random's legacy functions whose (NEP 19-frozen) stream is used exactly.
_LEGACY_EXACT = _words(
    "rand random random_sample ranf sample randint random_integers shuffle "
    "permutation bytes seed get_state set_state choice"
)
_STDLIB_RANDOM_OK = frozenset({"random", "seed", "getstate", "setstate", "Random"})
_RESIZERS = frozenset({"resize", "thumbnail", "rescale"})
_FILTER_KEYWORDS = frozenset({"resample", "interpolation", "order", "method"})
_INT_DTYPES = _words(
    "int8 int16 int32 int64 uint8 uint16 uint32 uint64 intp uintp int_ uint intc "
    "uintc byte ubyte short ushort long ulong longlong ulonglong bool_ bool int"
)
_INT_ANNOTATION = re.compile(
    r"\b(u?int(8|16|32|64|p|c|_)?|bool_?|(un)?signedinteger|integer)\b", re.IGNORECASE
)
_NOT_INT_ANNOTATION = re.compile(r"float|complex|inexact|floating|number|Any|object|str")
_OPT_OUT = re.compile(r"#\s*portable\s*:(.*)$")

# Calls whose result is an integer array when all their array arguments are.
_INT_PRESERVING_FUNCS = _words(
    "clip maximum minimum abs absolute negative sign where repeat tile concatenate "
    "stack hstack vstack dstack reshape transpose pad roll flip fliplr flipud rot90 "
    "broadcast_to ascontiguousarray asarray array copy left_shift right_shift "
    "bitwise_and bitwise_or bitwise_xor invert floor_divide mod remainder add "
    "subtract multiply take squeeze expand_dims moveaxis swapaxes zeros_like "
    "ones_like empty_like full_like sum cumsum prod cumprod max min amax amin matmul "
    "dot einsum tensordot inner"
)
_ALWAYS_INT_FUNCS = frozenset(
    {"argmax", "argmin", "argsort", "nonzero", "searchsorted", "count_nonzero", "flatnonzero"}
)
_INT_PRESERVING_METHODS = _words(
    "reshape copy transpose ravel flatten squeeze swapaxes repeat take clip sum "
    "cumsum prod cumprod max min dot item"
)
_ALWAYS_INT_METHODS = frozenset(
    {"argmax", "argmin", "argsort", "nonzero", "searchsorted", "random_raw", "bit_length"}
)
_ARRAY_ATTRS_INT = frozenset({"shape", "size", "ndim", "itemsize", "nbytes", "min", "max", "bits"})


# -- names and types ---------------------------------------------------------------------


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted module path, from every import in the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    out[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """``np.linalg.norm`` -> ``numpy.linalg.norm`` when its root is an imported name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id)
    if root is None:
        return f"builtins.{node.id}" if not parts else None
    return ".".join([root, *reversed(parts)])


class _Types:
    """Which names hold integers: a flow-insensitive inference per function scope."""

    def __init__(self, tree: ast.Module, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases
        self.type_aliases: dict[str, str] = {}
        self.int_returns: set[str] = set()
        for top in tree.body:
            if isinstance(top, ast.If):  # `if TYPE_CHECKING:` blocks hold type aliases
                body: list[ast.stmt] = [*top.body, *top.orelse]
            else:
                body = [top]
            for stmt in body:
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                ):
                    value = stmt.value
                    if isinstance(value, ast.Subscript | ast.Attribute | ast.BinOp):
                        self.type_aliases[stmt.targets[0].id] = ast.unparse(value)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and self.int_annotation(
                node.returns
            ):
                self.int_returns.add(node.name)
        self.module_env = self._scope(tree.body, {}, params=())

    def int_annotation(self, ann: ast.expr | None) -> bool:
        if ann is None:
            return False
        text = ast.unparse(ann).strip("'\"")
        for name, value in self.type_aliases.items():
            text = re.sub(rf"\b{re.escape(name)}\b", value.replace("\\", "\\\\"), text)
        return bool(_INT_ANNOTATION.search(text)) and not _NOT_INT_ANNOTATION.search(text)

    def function_env(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, bool]:
        args = fn.args
        positional = [*args.posonlyargs, *args.args]
        defaults: dict[str, ast.expr] = dict(
            zip(
                [a.arg for a in positional][len(positional) - len(args.defaults) :],
                args.defaults,
                strict=True,
            )
        )
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if d is not None:
                defaults[a.arg] = d
        params: list[tuple[str, bool]] = []
        for a in [*positional, *args.kwonlyargs]:
            default = defaults.get(a.arg)
            by_default = (
                isinstance(default, ast.Constant)
                and isinstance(default.value, int)
                and a.annotation is None
            )
            params.append((a.arg, by_default or self.int_annotation(a.annotation)))
        return self._scope(fn.body, self.module_env, params=params)

    def _scope(
        self,
        body: list[ast.stmt],
        outer: Mapping[str, bool],
        params: Iterable[tuple[str, bool]],
    ) -> dict[str, bool]:
        assigns: list[tuple[ast.expr, ast.expr | None]] = []  # (target, value or unknown)

        def visit(stmts: Iterable[ast.stmt]) -> None:
            for s in stmts:
                if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    continue
                if isinstance(s, ast.Assign):
                    for t in s.targets:
                        assigns.append((t, s.value))
                elif isinstance(s, ast.AnnAssign):
                    assigns.append((s.target, s.value))
                elif isinstance(s, ast.AugAssign):
                    assigns.append((s.target, ast.BinOp(left=s.target, op=s.op, right=s.value)))
                elif isinstance(s, ast.For | ast.AsyncFor):
                    # `for i in range(n)` and `for v in int_array` bind integers.
                    assigns.append((s.target, s.iter))
                elif isinstance(s, ast.With | ast.AsyncWith):
                    for item in s.items:
                        if item.optional_vars is not None:
                            assigns.append((item.optional_vars, None))
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(s, field, None)
                    if isinstance(inner, list):
                        visit(x for x in inner if isinstance(x, ast.stmt))
                if isinstance(s, ast.Try):
                    for h in s.handlers:
                        visit(h.body)

        visit(body)
        env: dict[str, bool] = dict(outer)
        local: dict[str, bool] = dict(params)
        for target, _ in assigns:
            for name in _target_names(target):
                local.setdefault(name, True)
        env.update(local)
        # Optimistic start, then refute until nothing changes (a fixed point).
        changed = True
        while changed:
            changed = False
            for target, value in assigns:
                ok = value is not None and self.is_int(value, env)
                for name in _target_names(target):
                    if env.get(name) and not ok:
                        env[name] = False
                        changed = True
        return env

    def is_int_dtype(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value.lstrip("<>=|") in _INT_DTYPES or bool(
                re.fullmatch(r"[<>=|]?[iub]\d?", node.value)
            )
        dotted = _dotted(node, self.aliases)
        if dotted is None:
            return False
        if dotted.startswith("numpy.") or dotted.startswith("builtins."):
            return dotted.rsplit(".", 1)[1] in _INT_DTYPES
        return False

    def dtype_kw(self, call: ast.Call) -> bool | None:
        """True/False for an integer / other ``dtype=``; None when there is none."""
        for kw in call.keywords:
            if kw.arg == "dtype":
                return self.is_int_dtype(kw.value)
        return None

    def is_int(self, node: ast.expr, env: Mapping[str, bool]) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int)  # bool is an int
        if isinstance(node, ast.Name):
            return env.get(node.id, False)
        if isinstance(node, ast.Attribute):
            if node.attr in _ARRAY_ATTRS_INT:
                return True
            if node.attr in ("T", "real", "flat"):
                return self.is_int(node.value, env)
            return False
        if isinstance(node, ast.Subscript):
            return self.is_int(node.value, env)
        if isinstance(node, ast.UnaryOp):
            return self.is_int(node.operand, env)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Div):
                return False
            return self.is_int(node.left, env) and self.is_int(node.right, env)
        if isinstance(node, ast.Compare):
            return True  # booleans
        if isinstance(node, ast.BoolOp):
            return all(self.is_int(v, env) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.is_int(node.body, env) and self.is_int(node.orelse, env)
        if isinstance(node, ast.Tuple | ast.List):
            return all(self.is_int(e, env) for e in node.elts)
        if isinstance(node, ast.Call):
            return self._call_is_int(node, env)
        return False

    def _call_is_int(self, node: ast.Call, env: Mapping[str, bool]) -> bool:
        dtype = self.dtype_kw(node)
        func = node.func
        dotted = _dotted(func, self.aliases)
        if dotted is not None:
            module, _, name = dotted.rpartition(".")
            if module == "builtins":
                if name in ("int", "len", "ord", "round") and len(node.args) <= 1:
                    return True
                if name == "range":
                    return True
                if name in ("max", "min", "abs", "sum"):
                    return all(self.is_int(a, env) for a in node.args)
                return name in self.int_returns
            if module == "numpy":
                if name in _INT_DTYPES:
                    return True
                if dtype is not None:
                    return dtype
                if name in _ALWAYS_INT_FUNCS:
                    return True
                if name in ("zeros", "ones", "empty", "full"):
                    return False  # float64 unless dtype= says otherwise
                if name == "arange" or name in _INT_PRESERVING_FUNCS:
                    return all(self.is_int(a, env) for a in node.args)
                return False
            return False
        if isinstance(func, ast.Attribute):
            name = func.attr
            if name in ("astype", "view") and node.args:
                return self.is_int_dtype(node.args[0])
            if name in _ALWAYS_INT_METHODS:
                return True
            if dtype is not None:
                return dtype
            if name in _INT_PRESERVING_METHODS:
                return self.is_int(func.value, env)
        if isinstance(func, ast.Name):
            return func.id in self.int_returns
        return False


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for e in target.elts:
            yield from _target_names(e)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


# -- the scan ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Raw:
    node: ast.AST
    kind: Kind
    construct: str
    why: str = ""


class _Scanner(ast.NodeVisitor):
    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source = source
        self.aliases = _aliases(tree)
        self.types = _Types(tree, self.aliases)
        self.env: Mapping[str, bool] = self.types.module_env
        self.rng_names: set[str] = set()
        self.stdlib_rngs: set[str] = set()
        self.legacy_rngs: set[str] = set()
        self.raw: list[_Raw] = []

    # scopes
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        saved = (self.env, set(self.rng_names))
        self.env = self.types.function_env(node)
        if self._is_recipe(node):
            positional = [*node.args.posonlyargs, *node.args.args]
            if len(positional) >= 2:
                self.rng_names.add(positional[1].arg)
        for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            if a.annotation is not None and "Generator" in ast.unparse(a.annotation):
                self.rng_names.add(a.arg)
        self.generic_visit(node)
        self.env, self.rng_names = saved

    visit_AsyncFunctionDef = visit_FunctionDef

    def _is_recipe(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        for d in node.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            name = _dotted(target, self.aliases) or ast.unparse(target)
            if name.split(".")[-1] == "recipe":
                return True
        return False

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call):
            made = _dotted(node.value.func, self.aliases) or ""
            names = {n for t in node.targets for n in _target_names(t)}
            if made in ("numpy.random.default_rng", "numpy.random.Generator"):
                self.rng_names |= names
            elif made == "numpy.random.RandomState":
                self.legacy_rngs |= names
            elif made in ("random.Random", "random.SystemRandom"):
                self.stdlib_rngs |= names
        self.generic_visit(node)

    # operators
    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult) and not self._ints(node.left, node.right):
            self._add(node, Kind.BLAS, self._segment(node))
        elif isinstance(node.op, ast.Pow) and not self._int_power(node.left, node.right):
            self._add(node, Kind.LIBM, self._segment(node))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.MatMult) and not self._ints(node.target, node.value):
            self._add(node, Kind.BLAS, self._segment(node))
        elif isinstance(node.op, ast.Pow) and not self._int_power(node.target, node.value):
            self._add(node, Kind.LIBM, self._segment(node))
        self.generic_visit(node)

    def _int_power(self, base: ast.expr, exponent: ast.expr) -> bool:
        if self._ints(base, exponent):
            return True
        # x ** 2 is a multiplication (numpy special-cases it); other exponents call pow.
        return isinstance(exponent, ast.Constant) and exponent.value in (0, 1, 2)

    # calls
    def visit_Call(self, node: ast.Call) -> None:
        self._check_call(node)
        self.generic_visit(node)

    def _check_call(self, node: ast.Call) -> None:
        func = node.func
        dotted = _dotted(func, self.aliases)
        label = self._call_label(node)
        if dotted == "builtins.pow" and not self._ints(*node.args):
            self._add(node, Kind.LIBM, label)
            return
        if dotted is not None and not dotted.startswith("builtins."):
            module, _, name = dotted.rpartition(".")
            if (module == "numpy" and name in _NUMPY_BLAS) or dotted.startswith(_LINALG_PREFIXES):
                if not (module == "numpy" and self._ints(*node.args)):
                    self._add(node, Kind.BLAS, label)
                return
            if dotted.startswith(_FFT_PREFIXES):
                self._add(node, Kind.FFT, label)
                return
            if module in ("numpy", "math", "cmath") and name in _TRANSCENDENTAL:
                if not (name in ("power", "pow") and module == "numpy" and self._ints(*node.args)):
                    self._add(node, Kind.LIBM, label)
                return
            if module.startswith("scipy.special") or dotted.startswith("scipy.special."):
                self._add(node, Kind.LIBM, label)
                return
            if module == "numpy" and name in _REDUCTIONS:
                if not self._exact_reduction(node, node.args[:1]):
                    self._add(node, Kind.FLOAT_REDUCTION, label)
                return
            if (
                module in ("numpy.add", "numpy.multiply", "numpy.logaddexp")
                and name in _UFUNC_REDUCERS
            ):
                if not self._exact_reduction(node, node.args[:1]):
                    self._add(node, Kind.FLOAT_REDUCTION, label)
                return
            if module == "numpy.random":
                self._check_legacy(node, name, label)
                return
            if module == "random" and name not in _STDLIB_RANDOM_OK:
                self._stdlib_random(node, name, label)
                return
            if name in _RESIZERS and dotted != "numpy.resize":
                if not self._has_filter(node, positional_ok=False):
                    self._add(node, Kind.RESIZE, label)
                return
            return
        if not isinstance(func, ast.Attribute):
            return
        name, receiver = func.attr, func.value
        if name == "dot" and not self._ints(receiver, *node.args):
            self._add(node, Kind.BLAS, label)
        elif name in _REDUCTION_METHODS and not self._exact_reduction(node, [receiver]):
            self._add(node, Kind.FLOAT_REDUCTION, label)
        elif name in _GENERATOR_METHODS and self._is_generator(receiver):
            self._add(node, Kind.GENERATOR, label)
        elif isinstance(receiver, ast.Name) and receiver.id in self.legacy_rngs:
            self._check_legacy(node, name, label)
        elif isinstance(receiver, ast.Name) and receiver.id in self.stdlib_rngs:
            if name not in _STDLIB_RANDOM_OK:
                self._stdlib_random(node, name, label)
        elif name in _RESIZERS and not self._has_filter(node, positional_ok=True):
            self._add(node, Kind.RESIZE, label)

    def _check_legacy(self, node: ast.Call, name: str, label: str) -> None:
        if name == "choice" and any(kw.arg == "p" for kw in node.keywords):
            why = (
                "np.random.choice with p= builds a float cumulative sum of the "
                "probabilities, rounded in a numpy-dependent order"
            )
            self._add(node, Kind.GLOBAL_RANDOM, label, why)
        elif name not in _LEGACY_EXACT and name[:1].islower() and name in _GENERATOR_METHODS:
            why = (
                f"numpy's legacy {name}() reads the NEP 19-frozen stream but transforms it "
                "with libm (log, exp, pow, ...) or compiled float code whose last bit "
                "differs between CPUs and OSes"
            )
            self._add(node, Kind.GLOBAL_RANDOM, label, why)

    def _stdlib_random(self, node: ast.Call, name: str, label: str) -> None:
        if name == "SystemRandom":
            why = "random.SystemRandom reads the OS entropy pool: it is never reproducible"
        else:
            why = (
                "Python guarantees only the sequence of random.random() for a seed; "
                f"random.{name}() may change algorithm between Python versions"
                + (", and it calls libm" if "variate" in name or name == "gauss" else "")
            )
        self._add(node, Kind.GLOBAL_RANDOM, label, why)

    def _is_generator(self, receiver: ast.expr) -> bool:
        if isinstance(receiver, ast.Name):
            return receiver.id in self.rng_names
        if isinstance(receiver, ast.Call):
            made = _dotted(receiver.func, self.aliases)
            return made in ("numpy.random.default_rng", "numpy.random.Generator")
        return False

    def _has_filter(self, node: ast.Call, *, positional_ok: bool) -> bool:
        if any(kw.arg in _FILTER_KEYWORDS for kw in node.keywords):
            return True
        # Pillow's Image.resize(size, resample): a second positional argument is the filter.
        return positional_ok and len(node.args) >= 2

    def _exact_reduction(self, node: ast.Call, data: list[ast.expr]) -> bool:
        dtype = self.types.dtype_kw(node)
        if dtype is not None:
            return dtype
        return bool(data) and self._ints(*data)

    def _ints(self, *nodes: ast.expr) -> bool:
        return all(self.types.is_int(n, self.env) for n in nodes)

    # output
    def _segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        text = " ".join(text.split())
        return text if len(text) <= 60 else text[:57] + "..."

    def _call_label(self, node: ast.Call) -> str:
        return self._segment(node.func) + "(...)"

    def _add(self, node: ast.AST, kind: Kind, construct: str, why: str = "") -> None:
        self.raw.append(_Raw(node=node, kind=kind, construct=construct, why=why))


def _opt_outs(source: str) -> dict[int, str]:
    """Line -> the reason of its ``# portable:`` comment (empty when none is given)."""
    out: dict[int, str] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            m = _OPT_OUT.match(tok.string)
            if m:
                out[tok.start[0]] = m.group(1).strip()
    return out


def check_source(source: str, *, path: str = "<recipe>") -> CheckReport:
    """Check recipe source text; raise :class:`RecipeError` if it does not parse."""
    try:
        tree = ast.parse(source, filename=path)
        opt_outs = _opt_outs(source)
    except SyntaxError as e:
        where = f"{path}:{e.lineno or 0}:{e.offset or 0}"
        raise RecipeError(
            f"{where}: cannot check the recipe, it does not parse: {e.msg}",
            hint="fix the syntax error (the check reads the file with this Python's parser)",
        ) from None
    except (tokenize.TokenError, ValueError) as e:
        raise RecipeError(f"{path}: cannot check the recipe, it does not tokenize: {e}") from None
    scanner = _Scanner(source, tree)
    scanner.visit(tree)
    used: set[int] = set()
    findings: list[Finding] = []
    exempted: list[Finding] = []
    seen: set[tuple[int, int, Kind]] = set()
    for r in scanner.raw:
        line, col = getattr(r.node, "lineno", 0), getattr(r.node, "col_offset", 0) + 1
        if (line, col, r.kind) in seen:
            continue
        seen.add((line, col, r.kind))
        why, fix = _WHY[r.kind]
        end = getattr(r.node, "end_lineno", None) or line
        reason = next(
            (opt_outs[n] for n in range(line, end + 1) if opt_outs.get(n)),
            None,
        )
        finding = Finding(
            path=path,
            line=line,
            column=col,
            kind=r.kind,
            construct=r.construct,
            why=r.why or why,
            fix=fix,
            exemption=reason,
        )
        if reason is None:
            findings.append(finding)
        else:
            used.update(n for n in range(line, end + 1) if opt_outs.get(n))
            exempted.append(finding)
    for n, reason in sorted(opt_outs.items()):
        if not reason:
            why = "a `# portable:` comment without a reason exempts nothing"
            fix = "write after the colon why this line is portable (e.g. the bound you proved)"
        elif n not in used:
            why = "this `# portable:` comment is on no line with a finding, so it exempts nothing"
            fix = "remove it, or move it to the line of the construct it justifies"
        else:
            continue
        findings.append(
            Finding(
                path=path,
                line=n,
                column=1,
                kind=Kind.OPT_OUT,
                construct=f"# portable: {reason}".rstrip(),
                why=why,
                fix=fix,
            )
        )
    return CheckReport(
        path=path,
        findings=tuple(sorted(findings, key=_order)),
        exempted=tuple(sorted(exempted, key=_order)),
    )


def _order(f: Finding) -> tuple[int, int, str]:
    return (f.line, f.column, f.kind.value)


def check_file(path: str | Path) -> CheckReport:
    """Check one recipe file (never imported or run)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise RecipeError(f"cannot read recipe file {p}: {os_error_text(e)}") from None
    try:  # the encoding Python reads it in: UTF-8, or what its coding comment declares
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        source = data.decode(encoding)
    except SyntaxError:
        raise RecipeError(
            f"{p}: cannot check the recipe, it is not UTF-8 and declares no encoding Python knows",
            hint="save the file as UTF-8",
        ) from None
    except UnicodeDecodeError as e:
        shown = "UTF-8" if encoding.startswith("utf-8") else encoding
        raise RecipeError(
            f"{p}: cannot check the recipe, it is not {shown} (byte {e.start})",
            hint="save the file as UTF-8",
        ) from None
    return check_source(source.replace("\r\n", "\n"), path=str(path))


def recipe_findings(rec: Recipe) -> tuple[Finding, ...]:
    """The open findings of the file that defines ``rec``: what ``recipes --check FILE``
    reports, for a warning before a run. None when that file cannot be found or checked,
    and none for a built-in recipe (each passes the check: a test says so), which spares
    every run of one the parse of its file."""
    import inspect

    from toolchain.recipes import BUILTIN_RECIPES

    if f"{rec.fn.__module__}:{rec.fn.__name__}" in BUILTIN_RECIPES.values():
        return ()
    try:
        path = inspect.getsourcefile(rec.fn)
    except TypeError:  # a built-in or C function: no source to check
        return ()
    if not path:
        return ()
    try:
        return check_file(path).findings
    except RecipeError:  # it imported, so it runs; the check is advice, not a gate
        return ()


def recipe_file(name: str) -> Path:
    """The source file of a built-in recipe, found without importing it."""
    import importlib.util

    from toolchain.recipes import BUILTIN_RECIPES

    target = BUILTIN_RECIPES.get(name)
    if target is None:
        known = ", ".join(sorted(BUILTIN_RECIPES))
        raise RecipeError(f"unknown built-in recipe {name!r}", hint=f"built-in recipes: {known}")
    spec = importlib.util.find_spec(target.partition(":")[0])
    if spec is None or spec.origin is None:
        raise RecipeError(f"built-in recipe {name!r} has no source file")
    return Path(spec.origin)
