"""Loading typed configs: dataclasses read from YAML/JSON files, overridden by ``key=value``, validated.

Every config in msqnet (model, data, training) is a plain dataclass. ``from_dict`` builds one from a
mapping and rejects unknown keys and wrong types with a message naming the full key path and, when
known, the file it came from, e.g. ``ak.yaml: model.decoder.num_heads: expected int, got 'x'``. A
``Literal`` type is the one list of a field's allowed values: ``from_dict`` checks it, and
``check_choices`` checks a dataclass built in code (its ``__post_init__`` calls it). Values are quoted in
messages as short excerpts (``utils.quote``). YAML and JSON text is read by ``parse_yaml`` /
``parse_json``, which refuse a key given twice in one mapping and YAML whose aliases expand to more
than ``MAX_YAML_VALUES`` values (a config has hundreds; an "alias bomb" of 700 bytes has billions). A dataclass with
a ``from_reference`` class method may be given by reference: ``model: msqnet-lite`` in a training
config is the model preset of that name, resolved and validated when the config loads.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union

import yaml

from .utils import InputFileError, atomic_write_text, quote, read_text

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "read_config_file",
    "load_config",
    "apply_overrides",
    "write_config_file",
    "check_choices",
    "parse_yaml",
    "parse_json",
    "MAX_YAML_VALUES",
]

# Values (scalars, lists, mappings) a YAML document may hold with every alias expanded.
MAX_YAML_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config value or key is invalid; the message names the file and key path."""


def _describe(value: Any) -> str:
    return f"{quote(value)} ({type(value).__name__})"


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_yaml_keys(node: yaml.MappingNode, source: str) -> None:
    """Refuse a key given twice in one mapping (YAML would keep the last silently); ``<<`` merges may override."""
    first: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in first:
            raise ConfigError(f"{source}:{line}: key {quote(key.value)} given twice in one mapping (first on line "
                              f"{first[key.tag, key.value]}); give each key once")
        first[key.tag, key.value] = line


def _check_yaml_tree(root: yaml.Node, source: str) -> None:
    """Refuse duplicate keys, a value that contains itself, and more than ``MAX_YAML_VALUES`` values once
    aliases are expanded, walking each distinct node once (so a bomb costs its size in the file, not expanded)."""
    expanded: dict[int, int] = {}  # node id -> values under it, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            on_path.discard(id(node))
            expanded[id(node)] = 1 + sum(expanded[id(c)] for c in _yaml_children(node))
            if expanded[id(node)] > MAX_YAML_VALUES:
                raise ConfigError(f"{source}:{node.start_mark.line + 1}: aliases expand this to more than "
                                  f"{MAX_YAML_VALUES} values; expected a config of plain values (write them out, "
                                  f"or nest fewer aliases)")
            continue
        if id(node) in expanded:
            continue
        if id(node) in on_path:
            raise ConfigError(f"{source}:{node.start_mark.line + 1}: an alias refers to a value that contains it; "
                              f"expected values without cycles")
        if isinstance(node, yaml.MappingNode):
            _check_yaml_keys(node, source)
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _yaml_children(node) if id(c) not in expanded)


def parse_yaml(text: str, source: str) -> Any:
    """The value of a YAML document (safe types only), refusing duplicate keys and alias expansions past
    ``MAX_YAML_VALUES``; ``source`` names the text in errors (a file, an override). Raises yaml.YAMLError
    for bad syntax."""
    loader = _YamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_tree(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


class _DuplicateJsonKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateJsonKey(key)
        out[key] = value
    return out


def parse_json(text: str, source: str) -> Any:
    """The value of a JSON document, refusing a key given twice in one object (ConfigError naming ``source``
    and the key). Raises json.JSONDecodeError for bad syntax."""
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateJsonKey as e:
        raise ConfigError(f"{source}: key {quote(e.key)} given twice in one object; give each key once") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in canonical form."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:  # an optional value: its one type's message says more (e.g. "a finite number")
            raise ConfigError(errors[0]) from None
        expected = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{where}: expected {expected}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {_describe(value)}")
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_reference"):  # a config named by a preset or a file
            try:
                return tp.from_reference(value)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {_describe(value)}")
        return from_dict(tp, value, where=where)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        val_tp = args[1] if args else Any
        return {str(k): _convert(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected int, got {_describe(value)}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{where}: expected number, got {_describe(value)}")
        # No setting means anything with NaN or infinity; they would only poison training silently.
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {quote(value)}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected string, got {_describe(value)}")
    if tp is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {_describe(value)}")
    raise ConfigError(f"{where}: unsupported annotation {tp!r}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + str(list(typing.get_args(tp)))
    return getattr(tp, "__name__", str(tp))


@functools.lru_cache(maxsize=None)
def _choice_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...], bool], ...]:
    """``(field, allowed values, None allowed)`` of every ``Literal``-typed field of dataclass ``cls``."""
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        args = typing.get_args(tp)
        optional = typing.get_origin(tp) in (Union, types.UnionType) and type(None) in args
        literal = next((a for a in (args if optional else (tp,)) if typing.get_origin(a) is Literal), None)
        if literal is not None:
            out.append((name, typing.get_args(literal), optional))
    return tuple(out)


def check_choices(cfg: Any) -> None:
    """Raise ConfigError naming the field when a ``Literal``-typed field of the dataclass ``cfg`` holds a
    value its type does not list (the check ``from_dict`` makes, for configs built in code)."""
    for name, allowed, optional in _choice_fields(type(cfg)):
        value = getattr(cfg, name)
        if value not in allowed and not (optional and value is None):
            raise ConfigError(f"{name}: expected one of {list(allowed)}, got {quote(value)}")


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key for {cls.__name__}; expected one of {sorted(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: required key missing for {cls.__name__}")
    try:
        return cls(**kwargs)
    except ConfigError as e:  # __post_init__ checks name their key, often with its section already
        named = not where or str(e).startswith(f"{where}.") or str(e).startswith(f"{where}:")
        if named:
            raise ConfigError(str(e)) from None
        key = str(e).split(":", 1)[0]
        raise ConfigError(f"{where}.{e}" if key in fields else f"{where}: {e}") from None  # data.fold: ...


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data (JSON/YAML-safe) view of a config dataclass."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or JSON mapping, with a clear error for a missing file or bad syntax."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a config file (YAML or JSON)")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = read_text(path, "config file")
    except InputFileError as e:
        raise ConfigError(str(e)) from None
    try:
        data = parse_json(text, str(path)) if path.suffix == ".json" else parse_yaml(text, str(path))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    if data is None:
        raise ConfigError(f"{path}: config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested mapping, in place."""
    for item in overrides:
        where = f"override {quote(item)}"
        if "=" not in item:
            raise ConfigError(f"{where}: expected KEY=VALUE, e.g. train.epochs=5")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{where}: {part} is not a section")
            node = nxt
        try:
            node[parts[-1]] = parse_yaml(raw, where) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: value is not valid YAML: {' '.join(str(e).split())}") from None
    return data


def load_config(cls: type[T], path: str | os.PathLike, overrides: list[str] | None = None) -> T:
    """Read ``path``, apply overrides and validate into ``cls``; errors name the file."""
    data = apply_overrides(read_config_file(path), overrides or [])
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def write_config_file(cfg: Any, path: str | os.PathLike) -> None:
    """Write a config (dataclass or mapping) as JSON/YAML atomically (temp file, then rename)."""
    path = Path(path)
    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    text = json.dumps(data, indent=2) + "\n" if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)
