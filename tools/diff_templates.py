"""Compare two synthesized cloud assemblies template by template (a refactor must not show).

``python -m tools.diff_templates BEFORE AFTER`` takes two ``cdk.out`` folders (each holding
``<stage>/*.template.json``, as ``make synth`` writes them) and reports, per template, the
logical ids added or removed and every resource, output, parameter, condition or mapping
whose content differs, by JSON path. Content addressed names (asset hashes: 64 hex digits)
change whenever shipped code changes; ``--ignore-asset-hashes`` masks them so that a code
edit does not hide a change of the infrastructure, and the masked differences are counted.
Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SECTIONS = ("Resources", "Outputs", "Parameters", "Conditions", "Mappings", "Rules")
ASSET_HASH = re.compile(r"[0-9a-f]{64}")
MASK = "<asset-hash>"


def templates(assembly: Path) -> dict[str, Path]:
    """``<stage>/<name>.template.json`` -> path, for every template under ``assembly``."""
    return {
        path.relative_to(assembly).as_posix(): path
        for path in sorted(assembly.glob("*/*.template.json"))
    }


def mask_hashes(value: Any) -> Any:
    """``value`` with every asset hash in its strings (and keys) replaced by :data:`MASK`."""
    if isinstance(value, str):
        return ASSET_HASH.sub(MASK, value)
    if isinstance(value, list):
        return [mask_hashes(item) for item in value]
    if isinstance(value, dict):
        return {mask_hashes(key): mask_hashes(item) for key, item in value.items()}
    return value


def differences(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """JSON paths at which ``before`` and ``after`` differ (the deepest differing node)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            where = f"{path}/{key}"
            if key not in after:
                yield f"{where}: removed"
            elif key not in before:
                yield f"{where}: added"
            else:
                yield from differences(before[key], after[key], where)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            yield from differences(old, new, f"{path}[{index}]")
    elif before != after:
        yield f"{path}: {json.dumps(before)[:120]} -> {json.dumps(after)[:120]}"


def compare_template(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The differing paths of two templates, section by section (Metadata of the template aside)."""
    found: list[str] = []
    for section in SECTIONS:
        found += differences(before.get(section, {}), after.get(section, {}), f"/{section}")
    return found


def compare(before: Path, after: Path, ignore_asset_hashes: bool) -> tuple[list[str], int]:
    """Every difference between the assemblies, and how many were asset hashes alone."""
    old, new = templates(before), templates(after)
    report = [f"{name}: template removed" for name in sorted(set(old) - set(new))]
    report += [f"{name}: template added" for name in sorted(set(new) - set(old))]
    masked = 0
    for name in sorted(set(old) & set(new)):
        left, right = (json.loads(p.read_text()) for p in (old[name], new[name]))
        found = compare_template(left, right)
        if ignore_asset_hashes and found:
            kept = compare_template(mask_hashes(left), mask_hashes(right))
            masked += len(found) - len(kept)
            found = kept
        report += [f"{name}: {line}" for line in found]
    return report, masked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore-asset-hashes", action="store_true")
    args = parser.parse_args(argv)
    report, masked = compare(args.before, args.after, args.ignore_asset_hashes)
    count = len(templates(args.after))
    for line in report:
        print(line)
    if masked:
        print(f"{masked} difference(s) in asset hashes only (shipped code changed), masked")
    print(f"{count} templates compared, {len(report)} difference(s)")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
