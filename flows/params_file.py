"""The flows' view of a project's ``params.yaml``: validation, the ``flow`` section, writing overrides.

The flows run every DVC stage of ``dvc.yaml``, including stages a project adds itself, so
``params.yaml`` may hold sections the library does not know: those belong to their stages. Every
section the library knows is validated, with the messages of :mod:`pipeline.config`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import (
    DEFAULT_PARAMS_FILE,
    FlowParams,
    Params,
    apply_override,
    read_params_file,
    validate_params,
)
from pipeline.errors import ParamsError

RATIO_PARAM = "mix.synthetic_ratio"
"""The param a sweep varies: weak (synthetic) samples per labelled sample, 0 = real only."""


def params_path(repo: str | Path) -> Path:
    return Path(repo) / DEFAULT_PARAMS_FILE


def read_raw_params(repo: str | Path) -> dict[str, Any]:
    """``params.yaml`` of ``repo`` as a plain nested dict."""
    path = params_path(repo)
    if not path.is_file():
        raise ParamsError(f"{path} does not exist (is {Path(repo)} the root of the DVC project?)")
    return read_params_file(path)


def with_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``key=value`` overrides applied (values parsed as YAML)."""
    result = copy.deepcopy(dict(raw))
    for override in overrides:
        key = override.partition("=")[0].strip()
        section = key.split(".")[0]
        if key and section not in raw and section not in Params.model_fields:
            raise ParamsError(f"--set {key}: unknown key ({section!r} is not a section of params.yaml)")
        apply_override(result, override)
    return result


def validate_known(raw: Mapping[str, Any], where: str) -> Params:
    """Validate every section of ``raw`` that the library knows (others are left to their stages)."""
    return validate_params({key: value for key, value in raw.items() if key in Params.model_fields}, where)


def load_flow_params(repo: str | Path, overrides: Iterable[str] = ()) -> FlowParams:
    """Validate ``params.yaml`` of ``repo`` with ``overrides`` applied; return its ``flow`` section."""
    where = str(params_path(repo))
    return validate_known(with_overrides(read_raw_params(repo), overrides), where).flow


def lookup(raw: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in ``raw``; ``KeyError`` naming the first missing part."""
    node: Any = raw
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(".".join(parts[: depth + 1]))
        node = node[part]
    return node


def write_overrides(repo: str | Path, overrides: Iterable[str]) -> list[str]:
    """Write ``key=value`` overrides into ``params.yaml`` in place, keeping its comments and order.

    DVC reads params from the file, so this is how a flow run's ``--set`` reaches the stages and
    ``dvc.lock`` (as ``dvc exp run -S`` does). Returns the keys whose value changed.
    """
    from ruamel.yaml import YAML

    overrides = list(overrides)
    if not overrides:
        return []
    path = params_path(repo)
    parsed = with_overrides(read_raw_params(repo), overrides)
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    document = yaml_rt.load(path.read_text())
    changed = []
    for override in overrides:
        key = override.partition("=")[0].strip()
        value = lookup(parsed, key)
        *parents, leaf = key.split(".")
        node = document
        for part in parents:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        if leaf not in node or node[leaf] != value:
            node[leaf] = _flow_style(value)
            changed.append(key)
    if changed:
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w") as handle:
            yaml_rt.dump(document, handle)
        temporary.replace(path)
    return changed


def _flow_style(value: Any) -> Any:
    """Lists and mappings inline (``[a, b]``, ``{k: v}``) like the values in ``params.yaml``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, list):
        node = CommentedSeq(_flow_style(item) for item in value)
    elif isinstance(value, dict):
        node = CommentedMap((key, _flow_style(item)) for key, item in value.items())
    else:
        return value
    node.fa.set_flow_style()
    return node
