"""Hand-written UCI Diabetes-130 rows (the file's 50 columns) for transform and job tests."""

from __future__ import annotations

HEADER = [
    "encounter_id",
    "patient_nbr",
    "race",
    "gender",
    "age",
    "weight",
    "admission_type_id",
    "discharge_disposition_id",
    "admission_source_id",
    "time_in_hospital",
    "payer_code",
    "medical_specialty",
    "num_lab_procedures",
    "num_procedures",
    "num_medications",
    "number_outpatient",
    "number_emergency",
    "number_inpatient",
    "diag_1",
    "diag_2",
    "diag_3",
    "number_diagnoses",
    "max_glu_serum",
    "A1Cresult",
    "metformin",
    "repaglinide",
    "nateglinide",
    "chlorpropamide",
    "glimepiride",
    "acetohexamide",
    "glipizide",
    "glyburide",
    "tolbutamide",
    "pioglitazone",
    "rosiglitazone",
    "acarbose",
    "miglitol",
    "troglitazone",
    "tolazamide",
    "examide",
    "citoglipton",
    "insulin",
    "glyburide-metformin",
    "glipizide-metformin",
    "glimepiride-pioglitazone",
    "metformin-rosiglitazone",
    "metformin-pioglitazone",
    "change",
    "diabetesMed",
    "readmitted",
]

BASE = dict.fromkeys(HEADER, "No")
BASE.update(
    {
        "encounter_id": "1000",
        "patient_nbr": "500",
        "race": "Caucasian",
        "gender": "Female",
        "age": "[70-80)",
        "weight": "?",
        "admission_type_id": "1",
        "discharge_disposition_id": "1",
        "admission_source_id": "7",
        "time_in_hospital": "3",
        "payer_code": "?",
        "medical_specialty": "InternalMedicine",
        "num_lab_procedures": "41",
        "num_procedures": "1",
        "num_medications": "12",
        "number_outpatient": "0",
        "number_emergency": "1",
        "number_inpatient": "2",
        "diag_1": "428",
        "diag_2": "250.43",
        "diag_3": "?",
        "number_diagnoses": "9",
        "max_glu_serum": "None",
        "A1Cresult": ">8",
        "metformin": "Steady",
        "insulin": "Up",
        "change": "Ch",
        "diabetesMed": "Yes",
        "readmitted": "<30",
    }
)


def row(**changes: str | None) -> list[str | None]:
    """One file row: the base encounter with some fields changed."""
    values: dict[str, str | None] = {**BASE, **changes}
    return [values[name] for name in HEADER]


#: encounter_id -> (row, expected status, expected reason)
CASES: dict[str, tuple[list[str | None], str, str | None]] = {
    "1000": (row(), "ok", None),
    "1001": (
        row(
            encounter_id="1001",
            patient_nbr="501",
            gender="Unknown/Invalid",
            age="[90-100)",
            admission_type_id="7",
            discharge_disposition_id="3",
            admission_source_id="4",
            medical_specialty="?",
            diag_1="V57",
            diag_2="?",
            diag_3="?",
            max_glu_serum=">300",
            A1Cresult="None",
            metformin="No",
            insulin="No",
            readmitted="NO",
            race="?",
        ),
        "ok",
        None,
    ),
    "1002": (
        row(encounter_id="1002", discharge_disposition_id="11"),
        "excluded",
        "in_hospital_death",
    ),
    "1003": (
        row(encounter_id="1003", discharge_disposition_id="13"),
        "excluded",
        "discharged_to_hospice",
    ),
    "1004": (row(encounter_id="1004", admission_type_id="4"), "excluded", "newborn"),
    "1005": (row(encounter_id="1005", patient_nbr=None), "quarantined", "missing_key"),
    "1006": (row(encounter_id="1006", age="seventy"), "quarantined", "out_of_contract"),
    "1007": (row(encounter_id="1007", time_in_hospital="-2"), "quarantined", "out_of_contract"),
    "1008": (row(encounter_id="1008", readmitted="maybe"), "quarantined", "out_of_contract"),
    "1009": (row(encounter_id="1009", A1Cresult=">9"), "quarantined", "out_of_contract"),
    "1010": (row(encounter_id="1010", num_lab_procedures="4x"), "quarantined", "out_of_contract"),
    "1011": (
        row(encounter_id="1011", patient_nbr="511"),
        "quarantined",
        "conflicting_duplicate",
    ),
    "1011b": (
        row(encounter_id="1011", patient_nbr="512"),
        "quarantined",
        "conflicting_duplicate",
    ),
    "1012": (row(encounter_id="1012", admission_source_id="99"), "ok", None),
    # The same encounter twice (the copy with spaces around values, which the job trims):
    # one copy goes on, the other is dropped and counted.
    "1013": (row(encounter_id="1013", patient_nbr="513"), "ok", None),
    "1013b": (
        row(encounter_id=" 1013 ", patient_nbr="513 ", diag_2=" 250.43"),
        "duplicate",
        "exact_duplicate",
    ),
    # Differing only in case: UCI's mappings are case-sensitive, so the rows disagree.
    "1014": (row(encounter_id="1014", patient_nbr="514"), "quarantined", "conflicting_duplicate"),
    "1014b": (
        row(encounter_id="1014", patient_nbr="514", race="CAUCASIAN"),
        "quarantined",
        "conflicting_duplicate",
    ),
}


def csv_text(rows: list[list[str | None]]) -> str:
    """The rows as the file's CSV (None = empty field)."""
    lines = [",".join(HEADER)]
    lines += [",".join("" if v is None else v for v in r) for r in rows]
    return "\r\n".join(lines) + "\r\n"
