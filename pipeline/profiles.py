"""Named params profiles: partial params files under ``profiles/`` that are applied onto params.yaml.

A profile holds only the keys it changes (``profiles/quickstart.yaml``: the whole pipeline at toy
size). Applying it writes those values into ``params.yaml``, and the defaults into every other key
some profile sets, so DVC sees ordinary params, ``dvc.lock`` records them, and one profile never
inherits another's values; the reserved name ``default`` puts all those keys back at their
defaults. Keys no profile names are never touched. Keys are checked against
:class:`pipeline.config.Params` so a typo fails with the profile's file and key named, before
anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pipeline.config import Params, read_params_file, validate_params
from pipeline.errors import ParamsError

PROFILE_DIR = "profiles"
DEFAULT_PROFILE = "default"
"""Reserved name: every key that some profile sets, back at its default."""


def profile_path(root: str | Path, name: str) -> Path:
    return Path(root) / PROFILE_DIR / f"{name}.yaml"


def available_profiles(root: str | Path) -> list[str]:
    """Names of the profiles under ``<root>/profiles`` (sorted), without the reserved ``default``."""
    folder = Path(root) / PROFILE_DIR
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def profile_summary(root: str | Path, name: str) -> str:
    """The first comment line of a profile file (its one-line description), or ''."""
    for line in profile_path(root, name).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def flatten_params(
    raw: dict[str, Any], where: str, section: type[BaseModel] = Params, prefix: str = ""
) -> dict:
    """``{"gan": {"steps": 3}}`` -> ``{"gan.steps": 3}``, descending only into params sections, so
    mapping-valued params (``loss.weights``) stay one value. Unknown keys raise, naming ``where``."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        field = section.model_fields.get(key)
        if field is None:
            raise ParamsError(f"{where}: {dotted}: unknown key")
        child = field.annotation
        if isinstance(child, type) and issubclass(child, BaseModel):
            if not isinstance(value, dict):
                raise ParamsError(f"{where}: {dotted}: is a section; give it a mapping of keys")
            flat.update(flatten_params(value, where, child, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def read_profile(root: str | Path, name: str) -> dict[str, Any]:
    """Dotted key -> value of every key that some profile sets: profile ``name``'s own values, the
    defaults for the rest (so profiles replace each other instead of stacking: ``quickstart`` after
    ``paper-gpu`` leaves no ``runtime.device: cuda`` behind). Checked: known keys, valid values."""
    defaults = default_values(root)
    if name == DEFAULT_PROFILE:
        return defaults
    path = profile_path(root, name)
    if not path.is_file():
        known = ", ".join([DEFAULT_PROFILE, *available_profiles(root)])
        raise ParamsError(f"profile {name!r}: {path} does not exist (profiles: {known})")
    flat = flatten_params(read_params_file(path), str(path))
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    validate_params(nested, where=str(path))
    return {**defaults, **flat}


def default_values(root: str | Path) -> dict[str, Any]:
    """Dotted key -> default value, for every key that some profile under ``root`` sets."""
    keys: set[str] = set()
    for name in available_profiles(root):
        path = profile_path(root, name)
        keys.update(flatten_params(read_params_file(path), str(path)))
    defaults = Params().model_dump(mode="json")
    values = {}
    for key in sorted(keys):
        node: Any = defaults
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


def as_overrides(values: dict[str, Any]) -> list[str]:
    """``key=value`` strings whose values round-trip (JSON is YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]
