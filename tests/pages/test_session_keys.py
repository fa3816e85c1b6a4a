"""Session-state keys have one home, segdemo/ui/state.py: pages and UI modules name them, never spell them.

A key spelled in two places drifts (one page seeds "fcn_seed", another reads
"fcn_sed") and nothing fails; named constants fail at import. The check walks
the syntax tree of every page and UI module and reports each place that spells
a key as a string: ``key="x"`` (or an f-string), ``st.session_state["x"]``,
``.get("x")`` / ``.setdefault("x")`` / ``.pop("x")``, ``"x" in st.session_state``,
``.update(x=...)``, a ``NAME = "x"`` used as a key, a ``key``
parameter's string default, and a string given to a segdemo.ui function's
``key`` parameter.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "segdemo" / "ui"
KEY_HOMES = {UI / "state.py", UI / "keys.py"}  # where the strings are spelled, once
FILES = ([REPO / "app.py"] + sorted((REPO / "pages").glob("*.py"))
         + sorted(p for p in UI.glob("*.py") if p not in KEY_HOMES))
STATE_METHODS = ("get", "setdefault", "pop")


def is_spelled(node: ast.AST | None) -> bool:
    """A string spelled here: a literal, an f-string, or a sum / %-format with a literal in it."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return is_spelled(node.left) or is_spelled(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return is_spelled(node.func.value)
    return False


def is_session_state(node: ast.AST) -> bool:
    """``st.session_state`` (or a bare ``session_state``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "session_state") or (
        isinstance(node, ast.Name) and node.id == "session_state")


def ui_functions(tree: ast.Module) -> dict[str, Callable[..., object]]:
    """Names this file binds to segdemo.ui modules (``inputs``) and functions (``stable_choice``)."""
    bound: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segdemo.ui"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                target = getattr(module, alias.name, None)
                if target is None:  # a submodule: from segdemo.ui import inputs
                    target = importlib.import_module(f"{node.module}.{alias.name}")
                bound[alias.asname or alias.name] = target
    return bound  # type: ignore[return-value]


def key_position(function: object) -> int | None:
    """The position of a function's ``key`` parameter (None: it has none)."""
    try:
        params = list(inspect.signature(function).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return params.index("key") if "key" in params else None


def spelled_keys(path: Path) -> Iterator[str]:
    """``line: what`` for every session key ``path`` spells as a string."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound = ui_functions(tree)
    local_strings: set[str] = set()  # NAME = "x" (or A, B = "x", "y"; f-strings too), at any depth
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                pairs = (zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple)
                         and isinstance(node.value, ast.Tuple) else [(target, node.value)])
                local_strings |= {t.id for t, v in pairs if isinstance(t, ast.Name) and is_spelled(v)}
    # module-level functions that return a spelled string: def control_key(op): return f"aug_{op}"
    local_builders = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                      and any(isinstance(r, ast.Return) and is_spelled(r.value) for r in ast.walk(node))}

    def spelled(node: ast.AST | None) -> bool:
        return is_spelled(node) or (isinstance(node, ast.Name) and node.id in local_strings) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in local_builders)

    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.keyword) and node.arg == "key" and spelled(node.value):
            yield f"{where}: key={ast.unparse(node.value)}"
        elif isinstance(node, ast.Subscript) and is_session_state(node.value) and spelled(node.slice):
            yield f"{where}: session_state[{ast.unparse(node.slice)}]"
        elif isinstance(node, ast.Compare) and any(is_session_state(c) for c in node.comparators) \
                and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and spelled(node.left):
            yield f"{where}: {ast.unparse(node)}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and is_session_state(node.func.value):
            if node.func.attr in STATE_METHODS and node.args and spelled(node.args[0]):
                yield f"{where}: session_state.{node.func.attr}({ast.unparse(node.args[0])})"
            elif node.func.attr == "update" and (node.keywords or any(
                    isinstance(a, ast.Dict) and any(spelled(k) for k in a.keys) for a in node.args)):
                yield f"{where}: {ast.unparse(node)}"
        elif isinstance(node, ast.Attribute) and is_session_state(node.value) \
                and node.attr not in STATE_METHODS + ("update", "keys", "items", "values", "clear"):
            yield f"{where}: session_state.{node.attr}"
        elif isinstance(node, ast.For) and isinstance(node.target, (ast.Name, ast.Tuple)):
            # for key, value in {"x": 1}.items(): st.session_state.setdefault(key, value)
            source = node.iter.func.value if isinstance(node.iter, ast.Call) and isinstance(
                node.iter.func, ast.Attribute) else node.iter
            first = node.target.elts[0] if isinstance(node.target, ast.Tuple) else node.target
            uses_state = any(is_session_state(n) for n in ast.walk(ast.Module(body=node.body, type_ignores=[])))
            if isinstance(source, ast.Dict) and any(spelled(k) for k in source.keys) and uses_state \
                    and isinstance(first, ast.Name):
                yield f"{where}: for {first.id} in {{{', '.join(ast.unparse(k) for k in source.keys if k)}}}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.posonlyargs + node.args.args
            defaults = dict(zip([a.arg for a in args][len(args) - len(node.args.defaults):], node.args.defaults))
            defaults.update((a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d)
            if spelled(defaults.get("key")):
                yield f"{where}: def {node.name}(key={ast.unparse(defaults['key'])})"
        if isinstance(node, ast.Call):  # a string handed to a segdemo.ui function's key parameter
            func = node.func
            target = None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in bound:
                target = getattr(bound[func.value.id], func.attr, None)
            elif isinstance(func, ast.Name) and func.id in bound:
                target = bound[func.id]
            # (state's own functions take catalogue keys and cache names: tr("fcn.intro") is no session key)
            if inspect.isfunction(target) and target.__module__.startswith("segdemo.ui") \
                    and target.__module__ not in ("segdemo.ui.state", "segdemo.ui.keys"):
                at = key_position(target)
                if at is not None and at < len(node.args) and spelled(node.args[at]):
                    yield f"{where}: {ast.unparse(func)}(... {ast.unparse(node.args[at])} ...)"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_session_keys_are_named_in_state(path: Path) -> None:
    found = list(spelled_keys(path))
    assert not found, "name these keys in segdemo/ui/state.py:\n" + "\n".join(found)


def test_the_check_sees_each_spelling(tmp_path: Path) -> None:
    """Every pattern the check names is found (so a pass means something), and named keys pass."""
    page = tmp_path / "probe_page.py"
    page.write_text(
        "import streamlit as st\n"
        "from segdemo.ui import inputs, widgets, state\n"
        "LOCAL = 'probe_local'\n"
        "st.slider('a', key='probe_a')\n"
        "st.slider('b', key=f'probe_{1}')\n"
        "st.session_state['probe_c'] = 1\n"
        "st.session_state.get('probe_d')\n"
        "st.session_state.setdefault('probe_e', 0)\n"
        "x = 'probe_f' not in st.session_state\n"
        "st.session_state.update(probe_g=1)\n"
        "st.session_state[LOCAL] = 2\n"
        "inputs.image_inputs('probe_h')\n"
        "widgets.set_choice('probe_i', 1)\n"
        "def f(key='probe_j'):\n    pass\n"
        "A, B = 'probe_k', 'probe_l'\n"
        "st.session_state.setdefault(B, [])\n"
        "for k, v in {'probe_m': 1}.items():\n    st.session_state.setdefault(k, v)\n"
        "def built(op):\n    return f'probe_{op}'\n"
        "st.session_state[built('n')] = 1\n"
        "st.session_state[state.LANG] = 'en'\n"
        "st.slider('ok', key=state.OPACITY)\n"
        "inputs.image_inputs(state.LANG)\n",
        encoding="utf-8")
    found = list(spelled_keys(page))
    text = "\n".join(found)
    for probe in "abcdefghijm":
        assert f"probe_{probe}" in text or (probe == "b" and "f'probe_{1}'" in text), (probe, text)
    assert "LOCAL" in text and "(B)" in text and "built('n')" in text
    assert len(found) == 14, text  # the three named keys at the end pass
