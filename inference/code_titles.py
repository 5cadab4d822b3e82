"""ICD-9-CM titles, so that an explanation reads "diagnosis 4280 (Congestive heart failure...)".

The titles ship inside the ``inference`` package (``icd9_titles.json.gz``, about 0.2 MB) and
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

TITLES_FILE = Path(__file__).resolve().parent / "icd9_titles.json.gz"

#: Encounter field -> the MIMIC-III dictionary table its codes come from.
SOURCE_TABLES = {
    "diagnosis_codes": "D_ICD_DIAGNOSES.csv",
    "procedure_codes": "D_ICD_PROCEDURES.csv",
}


def normalise_code(code: str) -> str:
    """ICD-9 code as the ETL writes it: upper case, no dots or spaces."""
    return "".join(code.split()).replace(".", "").upper()


@lru_cache(maxsize=1)
def load_titles(path: Path = TITLES_FILE) -> Mapping[str, Mapping[str, str]]:
    """Return ``field -> code -> title``; empty when the file is absent (codes stay bare)."""
    if not path.is_file():
        return {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    return {str(name): dict(titles) for name, titles in data.items()}


def title(field_name: str, code: str, titles: Mapping[str, Mapping[str, str]]) -> str | None:
    """The title of one code of ``field_name``, or ``None`` when it is not in the dictionary."""
    return titles.get(field_name, {}).get(normalise_code(code))


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
