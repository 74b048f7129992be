"""TESTS ONLY: what a Bicep template would set, worked out from its parse tree (pycep-parser), since
Azure (and the Bicep compiler) cannot be reached here.

`Template(path, params).value(node)` evaluates the part of Bicep the app's templates use to build
values: literals, parameters (their defaults, or what the caller passes), variables, string
interpolation, `[for ...]` arrays, the conditional operator, the functions listed in `_FUNCTIONS`,
and module outputs (the module's file evaluated with the parameters the caller gives it). What only
Azure knows when it deploys (a resource's properties, tenant(), uniqueString) comes from `leaves`:
a sample per property name, given by the test. Anything else evaluates to an `Unknown`, which the
caller can see and refuse, so a construct this does not understand is never taken for a value.

pycep gives an identifier and a string literal the same shape (a Python str), so before parsing,
every quoted word ('none', '_') is marked as text; an unmarked word is a name, and one that names
nothing in scope is an Unknown.
"""

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Unknown:
    """A value this evaluator cannot work out (and why)."""

    why: str

    def __str__(self) -> str:
        return f"<unknown: {self.why}>"


@dataclass(frozen=True)
class Resource:
    """A resource declared in a template: its properties are deployment-time facts (`leaves`)."""

    name: str


_INTERPOLATION = re.compile(r"\$\{((?:[^{}']|'[^']*')*)\}")


TEXT = "\u00a7"  # marks a quoted word as text (a character the templates do not use)
_QUOTED_WORD = re.compile(r"(?<!targetScope = )'(\w+)'")  # the parser reads targetScope's value itself


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> dict:
    from pycep import BicepParser

    source = path.read_text(encoding="utf-8")
    if TEXT in source:
        raise ValueError(f"{path.name} uses {TEXT!r}, which this evaluator needs to mark quoted words")
    return BicepParser().parse(text=_QUOTED_WORD.sub(lambda match: f"'{TEXT}{match.group(1)}'", source))


@functools.lru_cache(maxsize=None)
def _expression(text: str):
    """The parse tree of one expression (an interpolation's inside), as pycep gives it for a variable."""
    from pycep import BicepParser

    return BicepParser().parse(text=f"var x = {text}\n")["variables"]["x"]["value"]


class Template:
    def __init__(self, path: Path, params: dict | None = None, leaves: dict | None = None):
        self.path = Path(path).resolve()
        self.tree = _parse(self.path)
        declared = self.tree.get("parameters") or {}
        undeclared = sorted(set(params or {}) - set(declared))
        if undeclared:  # Bicep refuses these (BCP037); a misspelt one must not fall back to a default
            raise ValueError(f"{self.path.name} declares no parameter {', '.join(undeclared)}")
        self.leaves = leaves or {}
        self.params = {}
        for name, spec in (self.tree.get("parameters") or {}).items():
            if params and name in params:
                self.params[name] = params[name]
            elif spec.get("default") is not None:
                self.params[name] = self.value(spec["default"])
            else:
                self.params[name] = Unknown(f"parameter {name} of {self.path.name} is not given")
        self._modules: dict = {}

    # -- names in scope ---------------------------------------------------------------------------
    def _name(self, name: str, local: dict):
        if name in local:
            return local[name]
        if name in self.params:
            return self.params[name]
        variables = self.tree.get("variables") or {}
        if name in variables:
            return self.value(variables[name]["value"], local)
        if name in (self.tree.get("resources") or {}):
            return Resource(name)
        if name in (self.tree.get("modules") or {}):
            return _Module(self, name)
        return None

    def module(self, name: str) -> "Template":
        """The template of module `name` (declared once: not in a loop or behind a condition), with
        the parameters this template passes it."""
        if name not in self._modules:
            declared = self.tree["modules"][name]
            config = declared["config"]
            if "params" not in config:
                raise ValueError(f"module {name} of {self.path.name} is in a loop or behind a condition")
            given = {key: self.value(item) for key, item in config["params"].items()}
            self._modules[name] = Template(self.path.parent / declared["detail"]["path"], given, self.leaves)
        return self._modules[name]

    def modules(self):
        """The modules declared once (not in a loop or behind a condition), as templates."""
        return [self.module(name) for name, declared in (self.tree.get("modules") or {}).items()
                if "params" in declared["config"]]

    def _word(self, word: str, local: dict):
        named = self._name(word, local)
        return named if named is not None else Unknown(f"{word} in {self.path.name} names nothing")

    def output(self, name: str):
        outputs = self.tree.get("outputs") or {}
        if name not in outputs:
            return Unknown(f"{self.path.name} has no output {name}")
        return self.value(outputs[name]["value"])

    # -- evaluation -------------------------------------------------------------------------------
    def value(self, node, local: dict | None = None):
        local = local or {}
        if node is None or isinstance(node, (bool, int, float)):
            return node
        if isinstance(node, str):
            if node.startswith(TEXT):
                return node[len(TEXT):]
            if re.fullmatch(r"[A-Za-z_]\w*", node):
                return self._word(node, local)
            return self._interpolate(node, local)
        if isinstance(node, list):
            return [self.value(item, local) for item in node]
        if isinstance(node, dict):
            if set(node) == {"operator"}:
                return self._operator(node["operator"], local)
            if set(node) == {"function"}:
                return self._function(node["function"], local)
            if "loop_type" in node:
                return self._loop(node, local)
            return {self._key(key, local): self.value(item, local) for key, item in node.items()}
        return Unknown(f"a node of type {type(node).__name__}")

    def _key(self, key: str, local: dict):
        """An object's key: a bare word, a quoted word (marked) or an interpolated string."""
        return key[len(TEXT):] if key.startswith(TEXT) else self._interpolate(key, local)

    def _interpolate(self, text: str, local: dict):
        parts, position = [], 0
        for match in _INTERPOLATION.finditer(text):
            parts.append(text[position:match.start()])
            inner = self.value(_expression(match.group(1)), local)
            if isinstance(inner, (Unknown, Resource, _Leaf, dict, list)) or inner is None:
                return Unknown(f"'{match.group(0)}' in {self.path.name} is {inner}")
            parts.append(str(inner).lower() if isinstance(inner, bool) else str(inner))
            position = match.end()
        return "".join(parts) + text[position:]

    def _loop(self, node, local):
        detail = node["loop_type"]["detail"]
        items = self.value(detail["array_name"], local)
        if not isinstance(items, list):
            return Unknown(f"a loop over {items} in {self.path.name}")
        names = detail.get("item_name")
        out = []
        for index, item in enumerate(items):
            scope = {**local, names: item} if isinstance(names, str) else {**local}
            if isinstance(names, dict):  # (item, index)
                scope.update({names.get("item_name"): item, names.get("index_name"): index})
            out.append(self.value(node["config"], scope))
        return out

    def _operator(self, operator, local):
        kind, operands = operator["type"], operator.get("operands") or {}
        if kind == "property_accessor":
            return self._access(self.value(operands["operand_1"], local), operands["operand_2"], local)
        if kind == "conditional":
            condition = self.value(operands["condition"], local)
            if not isinstance(condition, bool):
                return Unknown(f"a condition that is {condition}")
            return self.value(operands["true_value" if condition else "false_value"], local)
        if kind == "not":
            inner = self.value(operands["bool_value"], local)
            return (not inner) if isinstance(inner, bool) else Unknown(f"not {inner}")
        values = [self.value(item, local) for item in operands.values()]
        unknown = next((item for item in values if isinstance(item, (Unknown, _Leaf, Resource))), None)
        if unknown is not None:
            return unknown if isinstance(unknown, Unknown) else Unknown(f"operator {kind} on {unknown}")
        simple = {"equals": lambda a, b: a == b, "not_equals": lambda a, b: a != b,
                  "and": lambda a, b: a and b, "or": lambda a, b: a or b,
                  "coalesce": lambda a, b: a if a is not None else b,
                  "index_accessor": lambda a, b: a[b] if isinstance(a, (list, dict)) else Unknown(f"{a}[{b}]")}
        if kind in simple:
            return simple[kind](*values)
        return Unknown(f"operator {kind} in {self.path.name}")

    def _access(self, base, member, local):
        """`base.member...`: pycep nests a path as base.(a.(b.c)); walk it one name at a time."""
        while True:
            if isinstance(member, dict) and set(member) == {"operator"} and \
                    member["operator"]["type"] == "property_accessor":
                first = member["operator"]["operands"]["operand_1"]
                base = self._member(base, first)
                member = member["operator"]["operands"]["operand_2"]
                continue
            return self._member(base, member)

    def _member(self, base, name):
        if not isinstance(name, str):
            return Unknown(f"a member {name}")
        if isinstance(base, Unknown):
            return base
        if isinstance(base, _Module):
            return _ModuleMember(base, name)
        if isinstance(base, _ModuleMember):
            return base.module.output(name) if base.member == "outputs" else Unknown(f"module member {base.member}")
        if isinstance(base, (Resource, _Leaf)):
            # A deployment-time fact: the sample for the last name of the path, if the test gave one.
            return self.leaves[name] if name in self.leaves else _Leaf(name)
        if isinstance(base, dict):
            return base[name] if name in base else Unknown(f"no {name} in an object")
        return Unknown(f"{name} of {base}")

    def _function(self, function, local):
        kind = function["type"]
        args = [self.value(item, local) for item in (function.get("parameters") or {}).values()]
        if kind in ("tenant", "subscription", "resource_group", "unique_string", "new_guid", "deployment"):
            return self.leaves.get(kind, _Leaf(kind))
        if kind not in _FUNCTIONS:
            return Unknown(f"function {kind} in {self.path.name}")
        unknown = [item for item in args if isinstance(item, (Unknown, _Leaf))]
        if unknown and kind != "empty":
            return unknown[0] if isinstance(unknown[0], Unknown) else Unknown(f"{kind} of {unknown[0]}")
        return _FUNCTIONS[kind](*args)


class _Module:
    def __init__(self, template: Template, name: str):
        self.template, self.name = template, name

    def output(self, output: str):
        return self.template.module(self.name).output(output)


@dataclass(frozen=True)
class _ModuleMember:
    module: _Module
    member: str


@dataclass(frozen=True)
class _Leaf:
    """A deployment-time fact with no sample: still a thing whose members can be asked for."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


def _union(*items):
    if all(isinstance(item, dict) for item in items):
        merged = {}
        for item in items:
            merged.update(item)
        return merged
    return Unknown("union of what is not all objects")


_FUNCTIONS = {
    "union": _union,
    "empty": lambda item: Unknown(f"empty({item})") if isinstance(item, (Unknown, _Leaf)) else not item,
    "join": lambda items, delimiter: delimiter.join(items),
    "to_upper": lambda text: text.upper(),
    "to_lower": lambda text: text.lower(),
    "replace": lambda text, old, new: text.replace(old, new),
    "items": lambda mapping: [{"key": key, "value": mapping[key]} for key in sorted(mapping, key=str.lower)],
    "json": json.loads,
    "concat": lambda *items: (sum(items, []) if all(isinstance(item, list) for item in items)
                              else "".join(items) if all(isinstance(item, str) for item in items)
                              else Unknown("concat of arrays and strings together")),
    "string": lambda item: json.dumps(item) if isinstance(item, (dict, list)) else str(item),
    "length": len,
    "contains": lambda container, item: item in container,
    "take": lambda item, count: item[:count],
}
