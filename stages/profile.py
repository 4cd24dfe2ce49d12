"""``mgm profile NAME``: write a named params profile (``profiles/NAME.yaml``) into ``params.yaml``.

The keys any profile sets change (this profile's values, the defaults for the others), comments
and every other value stay. ``mgm profile default`` puts every key that any profile sets back to
its default (not to values you had there before: ``git diff params.yaml`` shows what changed);
``mgm profile`` lists the profiles. Then run ``dvc repro`` (or ``mgm flow run``) as usual: DVC
sees ordinary params.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import DEFAULT_PARAMS_FILE
from pipeline.errors import PipelineError
from pipeline.profiles import (
    DEFAULT_PROFILE,
    as_overrides,
    available_profiles,
    profile_summary,
    read_profile,
)


def main(argv: Sequence[str] | None = None, prog: str = "mgm profile") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="profile to apply (none: list them)")
    parser.add_argument("--root", default=".", help="the project folder (default: the current one)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.name is None:
        print(f"  {DEFAULT_PROFILE:<12} every key a profile sets, back at its default")
        for name in available_profiles(root):
            print(f"  {name:<12} {profile_summary(root, name)}")
        return 0
    try:
        from flows.params_file import read_raw_params, validate_known, with_overrides, write_overrides

        values = read_profile(root, args.name)
        # the result must be valid with the user's other values too, before anything is written
        validate_known(with_overrides(read_raw_params(root), as_overrides(values)), f"profile {args.name!r}")
        if args.dry_run:
            raw = read_raw_params(root)
            changed = [key for key, value in values.items() if _current(raw, key) != value]
        else:
            changed = write_overrides(root, as_overrides(values))
    except PipelineError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    verb = "would change" if args.dry_run else "changed"
    print(f"{DEFAULT_PARAMS_FILE}: {verb} {len(changed)} of the {len(values)} keys of {args.name!r}")
    for item in changed:
        print(f"  {item}")
    if not args.dry_run and args.name != DEFAULT_PROFILE:
        print(f"next: `dvc repro` (or `mgm flow run`); `{prog} {DEFAULT_PROFILE}` resets these keys")
    return 0


def _current(raw: dict, key: str) -> object:
    from flows.params_file import lookup

    try:
        return lookup(raw, key)
    except KeyError:
        return KeyError  # absent: differs from any value


if __name__ == "__main__":
    sys.exit(main())
