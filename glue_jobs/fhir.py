"""FHIR R4 Bulk Data export -> the canonical encounter rows, with MIMIC's cohort and label rules.

Encounter is the index table: an inpatient stay is an Encounter whose ``class`` is an
inpatient ActCode (IMP, ACUTE, NONAC) and whose status is ``finished``; other encounters are
excluded (``not_inpatient``, ``not_finished``) and are no stays of the admission history;
finished EMER and outpatient encounters count as the patient's visits (``visit_counts``), by
the record rules of ``contracts.fhir`` that the API's FHIR mapper (``fhir_mapping``) follows
too, void statuses included (``VOID_STATUSES``: such resources have no value).
Each resource type's mapping is a small pure ``DataFrame -> DataFrame`` transform onto the
MIMIC-III staging's columns, with the terminology of ``contracts.fhir``:
- Patient: gender, birthDate (the age rule is MIMIC-III's), US Core race/ethnicity;
- Encounter: period, priority (admission type; EL/R are planned), admitSource (``emd`` is an
  ED arrival, ``born`` a birth, excluded as newborn), dischargeDisposition by its system URI
  (HL7 or NUBC; ``expired`` is an in-hospital death), serviceType (admitting service),
  diagnosis ranks (the order of the Conditions);
- Condition / Procedure codes by their coding's system URI (the first coding of a known
  system; codings of only unknown systems: ``unknown_code_system``); Procedures in order of
  performance; MedicationRequest drug names; Observation (category laboratory) values by
  LOINC and abnormal by interpretation; DocumentReference (LOINC discharge summary) text.
Lines that are not JSON (``malformed_resource``), of another type than their file's
(``wrong_resource_type``), without an id (``missing_key``) or sharing an id with a different
resource (``conflicting_duplicate``) go to quarantine, exact copies are kept once and
counted, references to missing resources are ``unknown_patient`` (an encounter's) or
``orphan`` (a child resource's), so in = out + excluded + quarantined + copies holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts import fhir
from contracts.codes import CodeSystem
from contracts.encounter import PRIOR_UTILISATION_WINDOW_DAYS, UNKNOWN
from glue_jobs import cohort
from glue_jobs.accounting import (
    COUNT_COLUMNS,
    NOT_SELECTED,
    ORPHAN,
    TOTAL,
    child_row_counts,
    child_table_outcomes,
    lookup_table_outcomes,
)
from glue_jobs.codes import tagged_by
from glue_jobs.copies import (
    HAS_VALUE,
    ROW_TEXT,
    ROWS,
    UNKNOWN_SYSTEM,
    VARIANTS,
    distinct_rows,
    group_by_key,
)
from glue_jobs.deid import add_keys
from glue_jobs.fhir_readers import CORRUPT_RECORD
from glue_jobs.mimic3 import assemble_features
from glue_jobs.mimic3_admissions import (
    IS_NEWBORN,
    PATIENT_ROWS,
    PATIENT_VARIANTS,
    Vocabulary,
    add_categories,
    add_timeline,
    stage_admissions,
)
from glue_jobs.mimic3_details import (
    DISCHARGE_SUMMARY_CATEGORY,
    _first_occurrences,
    code_sequences,
    glucose_band,
    hba1c_band,
    medication_features,
    note_features,
)
from glue_jobs.parsing import as_timestamp

INPUT_TABLE = "Encounter"
CHILD_TYPES = ("Condition", "Procedure", "MedicationRequest", "Observation", "DocumentReference")
REASON = "_reason"
_KNOWN_DISPOSITIONS: dict[str, str] = {
    f"{system}|{code}": category
    for system, table in fhir.DISCHARGE_DISPOSITION_SYSTEMS.items()
    for code, category in table.items()
}
HISPANIC, NO_RACE = "hispanic", "unknown"
VOCABULARY = Vocabulary(
    admission_type=fhir.PRIORITY,
    admission_location=fhir.ADMIT_SOURCE,
    discharge_location=_KNOWN_DISPOSITIONS,
    gender=fhir.GENDER,
    ethnicity={**fhir.OMB_RACE, HISPANIC: "hispanic", NO_RACE: UNKNOWN},
    planned_admission_types=tuple(
        code for code, category in fhir.PRIORITY.items() if category in fhir.PLANNED_ADMISSION_TYPES
    ),
)
ADMIT_AT_BIRTH = "born"
EXPIRED = "expired"
SECONDS_PER_DAY = 86_400
DIGEST_BITS = 256
MERGE_JOIN = "merge"
#: Screened resources, staged encounters and per-encounter aggregates are each read by more
#: than one job: they are kept on local disk, not in the JVM heap, so memory does not grow
#: with the export.
PERSISTED = StorageLevel.DISK_ONLY
EMERGENCY_VISITS = "_emergency_visits"
OUTPATIENT_VISITS = "prior_outpatient_visits_12m"


# --- Shared helpers ---------------------------------------------------------------------------


def shuffled(frame: DataFrame) -> DataFrame:
    """The frame as a side of a sort-merge join, never broadcast: each side of the job's joins
    grows with the export (a table per encounter, patient or condition), and a broadcast copies
    its whole side onto the driver, whatever the planner's size estimate said.
    https://spark.apache.org/docs/latest/sql-ref-syntax-qry-select-hints.html#join-hints"""
    return frame.hint(MERGE_JOIN)


def text_id(value: Column) -> Column:
    """A resource id or reference target trimmed; empty is null."""
    trimmed = F.trim(value)
    return F.when(F.length(trimmed) > 0, trimmed)


def reference_id(reference: Column, resource_type: str) -> Column:
    """The id a reference names (``Patient/123`` or an absolute URL ending in it); null when
    it names another type or no id."""
    found = F.regexp_extract(reference, rf"(?:^|/){resource_type}/([^/]+)$", 1)
    return F.when(F.length(found) > 0, found)


def coding_of(concept: Column, systems: Sequence[str]) -> Column:
    """The first coding of a CodeableConcept whose system is one of ``systems`` (or null)."""
    matching = F.filter(concept["coding"], lambda c: c["system"].isin(*systems))
    return F.try_element_at(matching, F.lit(1))


def code_in(concept: Column, system: str) -> Column:
    """The code of the concept's first coding of ``system``."""
    return coding_of(concept, [system])["code"]


def row_json(frame: DataFrame) -> Column:
    """The resource as the job reads it (every schema field), for telling copies apart."""
    fields = [c for c in frame.columns if c not in (CORRUPT_RECORD, REASON)]
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in fields]))


def row_digest(frame: DataFrame) -> Column:
    """SHA-256 of ``row_json``: what copies are told apart by. 32 bytes instead of the whole
    resource's text, so the screened rows that are cached and shuffled stay narrow (two
    resources differ exactly when their digests do, but with probability 2**-256)."""
    return F.unhex(F.sha2(row_json(frame), DIGEST_BITS))


def screen(frame: DataFrame, resource_type: str, conflicts: bool = True) -> DataFrame:
    """Add ``_row_text`` (the row's digest) and ``_reason``: malformed line, wrong resource
    type, no id, or (with ``conflicts``) an id shared by resources that differ; null for a
    usable resource."""
    with_text = frame.select("*", row_digest(frame).alias(ROW_TEXT))
    resource_id = text_id(F.col("id"))
    malformed = F.col(CORRUPT_RECORD).isNotNull()
    wrong_type = ~F.coalesce(F.col("resourceType") == resource_type, F.lit(False))
    # Only resources of the file's type are compared: a line of another type is no copy.
    by_id = Window.partitionBy(resource_id, malformed | wrong_type)
    differs = F.min(ROW_TEXT).over(by_id) != F.max(ROW_TEXT).over(by_id)
    checks = [
        (malformed, cohort.MALFORMED_RESOURCE),
        (wrong_type, cohort.WRONG_RESOURCE_TYPE),
        (resource_id.isNull(), cohort.MISSING_KEY),
    ]
    if conflicts:
        checks.append((differs, cohort.CONFLICTING_DUPLICATE))
    return with_text.select("*", cohort.first_reason(checks).alias(REASON))


def screened_outcomes(screened: DataFrame, table: str) -> DataFrame:
    """The (table, outcome, rows) rows of a type's unusable resources, totals included."""
    bad = (
        screened.where(F.col(REASON).isNotNull())
        .groupBy(REASON)
        .agg(F.count(F.lit(1)).alias("rows"))
    )
    return bad.select(
        F.lit(table).alias("table"), F.col(REASON).alias("outcome"), "rows"
    ).unionByName(bad.select(F.lit(table).alias("table"), F.lit(TOTAL).alias("outcome"), "rows"))


def usable(screened: DataFrame) -> DataFrame:
    """The resources that passed ``screen``."""
    return screened.where(F.col(REASON).isNull()).drop(REASON)


# --- Patient and Encounter ----------------------------------------------------------------------


def _omb_code(extensions: Column, url: str) -> Column:
    outer = F.try_element_at(F.filter(extensions, lambda e: e["url"] == url), F.lit(1))
    inner = F.filter(outer["extension"], lambda e: e["url"] == "ombCategory")
    return F.try_element_at(inner, F.lit(1))["valueCoding"]["code"]


def parse_patients(patients: DataFrame) -> DataFrame:
    """Usable Patients -> one row per id: its rows and variants, gender, birth date, race
    (``hispanic`` by the US Core ethnicity whatever the race, as the MIMIC mapping does)."""
    race = F.coalesce(
        F.when(
            _omb_code(F.col("extension"), fhir.US_CORE_ETHNICITY_URL)
            == fhir.OMB_ETHNICITY_HISPANIC,
            F.lit(HISPANIC),
        ),
        _omb_code(F.col("extension"), fhir.US_CORE_RACE_URL),
        F.lit(NO_RACE),
    )
    typed = patients.select(
        text_id(F.col("id")).alias("subject_id"),
        F.trim(F.col("gender")).alias("gender"),
        F.expr("try_to_timestamp(trim(birthDate))").alias("dob_ts"),
        race.alias("ethnicity"),
        ROW_TEXT,
    )
    grouped = group_by_key(
        typed,
        "subject_id",
        F.min("gender").alias("gender"),
        F.min("dob_ts").alias("dob_ts"),
        F.min("ethnicity").alias("ethnicity"),
    )
    return grouped.select(
        "subject_id",
        F.col(ROWS).alias(PATIENT_ROWS),
        F.col(VARIANTS).alias(PATIENT_VARIANTS),
        "gender",
        "dob_ts",
        "ethnicity",
    )


def parse_encounters(screened: DataFrame) -> DataFrame:
    """Screened Encounters -> the MIMIC-III staging's admission columns, plus the early
    checks' flags (``_reason``, ``_inpatient``, ``_finished``) and the admitting service."""
    hospitalization = F.col("hospitalization")
    admit_source = code_in(hospitalization["admitSource"], fhir.SYSTEM_ADMIT_SOURCE)
    disposition = coding_of(
        hospitalization["dischargeDisposition"], list(fhir.DISCHARGE_DISPOSITION_SYSTEMS)
    )
    disposition_key = F.concat(disposition["system"], F.lit("|"), disposition["code"])
    klass = F.when(F.col("class.system") == fhir.SYSTEM_ACT_CODE, F.col("class.code"))
    # A line that is not an Encounter has no encounter id: it is no copy of one.
    unusable = F.coalesce(
        F.col(REASON).isin(cohort.MALFORMED_RESOURCE, cohort.WRONG_RESOURCE_TYPE), F.lit(False)
    )
    flat = screened.select(
        F.when(~unusable, text_id(F.col("id"))).alias("hadm_id"),
        reference_id(F.col("subject.reference"), "Patient").alias("subject_id"),
        F.col("period.start").alias("_start"),
        F.col("period.end").alias("_end"),
        code_in(F.col("priority"), fhir.SYSTEM_ACT_PRIORITY).alias("admission_type"),
        admit_source.alias("admission_location"),
        disposition_key.alias("discharge_location"),
        F.lower(F.trim(F.col("serviceType.text"))).alias("admitting_service"),
        klass.alias("_class"),
        klass.isin(*fhir.INPATIENT_CLASS_CODES).alias("_inpatient"),
        F.col("status").isin(*fhir.FINISHED_STATUSES).alias("_finished"),
        REASON,
        ROW_TEXT,
    )
    expired = F.coalesce(
        F.create_map(*[F.lit(x) for kv in _KNOWN_DISPOSITIONS.items() for x in kv])[
            F.col("discharge_location")
        ]
        == EXPIRED,
        F.lit(False),
    )
    admit = as_timestamp(flat, "_start")
    return flat.select(
        "*",
        admit.alias("admit_ts"),
        as_timestamp(flat, "_end").alias("disch_ts"),
        # A stay that began in the ED is an ED visit (contracts.fhir's record rules).
        F.when(F.col("admission_location") == fhir.ADMIT_SOURCE_EMERGENCY, admit).alias("edreg_ts"),
        expired.cast("long").alias("hospital_expire_flag"),
        F.lit(False).alias("_bad_edregtime"),
        F.coalesce(F.col("admission_location") == ADMIT_AT_BIRTH, F.lit(False)).alias(IS_NEWBORN),
    ).drop("_start", "_end")


def early_checks() -> list[tuple[Column, str, str]]:
    """Unusable lines are quarantined, other encounters than finished stays excluded, before
    the staging's own checks."""
    quarantined, excluded = cohort.STATUS_QUARANTINED, cohort.STATUS_EXCLUDED
    reason = F.col(REASON)
    return [
        (reason == cohort.MALFORMED_RESOURCE, quarantined, cohort.MALFORMED_RESOURCE),
        (reason == cohort.WRONG_RESOURCE_TYPE, quarantined, cohort.WRONG_RESOURCE_TYPE),
        (~F.coalesce(F.col("_inpatient"), F.lit(False)), excluded, cohort.NOT_INPATIENT),
        (~F.coalesce(F.col("_finished"), F.lit(False)), excluded, cohort.NOT_FINISHED),
    ]


def stage(encounters: DataFrame, patients: DataFrame, deid_key: str) -> DataFrame:
    """Screened Encounters + usable Patients -> every encounter with status, timeline,
    categories and keys (the MIMIC-III staging with FHIR's vocabulary)."""
    staged = stage_admissions(
        parse_encounters(encounters), shuffled(parse_patients(patients)), early_checks()
    )
    categorised = add_categories(add_timeline(staged, VOCABULARY), VOCABULARY)
    return add_keys(categorised, deid_key, "subject_id", "hadm_id")


def visit_counts(staged: DataFrame, kept: DataFrame) -> DataFrame:
    """(hadm_id, emergency visits, outpatient visits) of each kept stay: the patient's finished
    EMER and outpatient-class Encounters that start in the 365 days before the admission (the
    stays admitted from the ED are counted by the timeline; contracts.fhir's record rules)."""
    visits = (
        staged.where(
            (F.col("reason") == cohort.NOT_INPATIENT)
            & F.coalesce(F.col("_finished"), F.lit(False))
            & F.col("admit_ts").isNotNull()
        )
        .dropDuplicates(["hadm_id"])
        .select(
            F.col("subject_id").alias("_subject"),
            F.unix_timestamp("admit_ts").alias("_visit_s"),
            F.col("_class").isin(*fhir.EMERGENCY_CLASS_CODES).alias("_emergency"),
            F.col("_class").isin(*fhir.OUTPATIENT_CLASS_CODES).alias("_outpatient"),
        )
    )
    stays = kept.select("hadm_id", "subject_id", F.unix_timestamp("admit_ts").alias("_admit_s"))
    window = PRIOR_UTILISATION_WINDOW_DAYS * SECONDS_PER_DAY
    in_window = (
        (F.col("_subject") == F.col("subject_id"))
        & (F.col("_visit_s") >= F.col("_admit_s") - F.lit(window))
        & (F.col("_visit_s") < F.col("_admit_s"))
    )
    return (
        stays.join(shuffled(visits), on=in_window, how="left")
        .groupBy("hadm_id")
        .agg(
            F.count(F.when(F.col("_emergency"), F.lit(1))).cast("int").alias(EMERGENCY_VISITS),
            F.count(F.when(F.col("_outpatient"), F.lit(1))).cast("int").alias(OUTPATIENT_VISITS),
        )
    )


def with_visits(kept: DataFrame, visits: DataFrame) -> DataFrame:
    """Kept stays with the EMER visits added to ``prior_ed_visits_12m`` and the outpatient
    visits as ``prior_outpatient_visits_12m``."""
    joined = kept.join(shuffled(visits), on="hadm_id", how="left")
    ed_visits = F.col("prior_ed_visits_12m") + F.coalesce(F.col(EMERGENCY_VISITS), F.lit(0))
    return joined.select(
        *[ed_visits.alias(c) if c == "prior_ed_visits_12m" else F.col(c) for c in kept.columns],
        F.coalesce(F.col(OUTPATIENT_VISITS), F.lit(0)).alias(OUTPATIENT_VISITS),
    )


# --- Child resources ---------------------------------------------------------------------------


def void(kind: str, status: Column) -> Column:
    """Whether a status says the resource is not part of the record (contracts.fhir)."""
    return F.coalesce(status.isin(*fhir.VOID_STATUSES[kind]), F.lit(False))


def coded(
    resources: DataFrame, systems: Mapping[str, CodeSystem], order: Column, voided: Column
) -> DataFrame:
    """Conditions or Procedures -> (hadm_id, seq_num, code) tagged by the first coding of a
    known system; codings of only unknown systems mark the row ``_unknown_system``; a
    ``voided`` row has no value."""
    coding = coding_of(F.col("code"), list(systems))
    with_codes = resources.select(
        reference_id(F.col("encounter.reference"), "Encounter").alias("hadm_id"),
        order.alias("seq_num"),
        tagged_by(systems, coding["system"], coding["code"]).alias("_tagged"),
        (F.size(F.coalesce(F.col("code.coding"), F.array())) > 0).alias("_has_codes"),
        voided.alias("_void"),
        ROW_TEXT,
    )
    code = F.when(~F.col("_void"), F.col("_tagged"))
    return with_codes.select(
        "hadm_id",
        "seq_num",
        code.alias("code"),
        F.coalesce(code.isNotNull(), F.lit(False)).alias(HAS_VALUE),
        F.coalesce(
            F.col("_has_codes") & F.col("_tagged").isNull() & ~F.col("_void"), F.lit(False)
        ).alias(UNKNOWN_SYSTEM),
        ROW_TEXT,
    )


def diagnosis_ranks(encounters: DataFrame) -> DataFrame:
    """(condition id, rank) from the usable Encounters' diagnosis lists (lowest rank kept)."""
    listed = encounters.select(F.explode_outer("diagnosis").alias("_d"))
    return (
        listed.select(
            reference_id(F.col("_d.condition.reference"), "Condition").alias("_condition"),
            F.col("_d.rank").alias("_rank"),
        )
        .where(F.col("_condition").isNotNull())
        .groupBy("_condition")
        .agg(F.min("_rank").alias("_rank"))
    )


def conditions(resources: DataFrame, ranks: DataFrame) -> DataFrame:
    """Conditions -> coded rows in the order of their encounter's diagnosis ranks; entered in
    error or refuted (verificationStatus) ones have no value."""
    ranked = resources.join(
        shuffled(ranks), on=text_id(F.col("id")) == F.col("_condition"), how="left"
    )
    verification = F.coalesce(F.col("verificationStatus.coding"), F.array())
    voided = F.exists(verification, lambda c: c["code"].isin(*fhir.VOID_CONDITION_VERIFICATIONS))
    return coded(ranked, fhir.CONDITION_SYSTEMS, F.col("_rank"), F.coalesce(voided, F.lit(False)))


def procedures(resources: DataFrame) -> DataFrame:
    """Procedures -> coded rows in order of performance (``performedDateTime``)."""
    performed = F.unix_micros(F.expr("try_to_timestamp(trim(performedDateTime))"))
    return coded(resources, fhir.PROCEDURE_SYSTEMS, performed, void("Procedure", F.col("status")))


def prescriptions(resources: DataFrame) -> DataFrame:
    """MedicationRequests -> MIMIC PRESCRIPTIONS columns: the drug's name is the concept's
    text, else its first coding's display; ``authoredOn`` orders first prescriptions."""
    concept = F.col("medicationCodeableConcept")
    name = F.coalesce(concept["text"], F.try_element_at(concept["coding"], F.lit(1))["display"])
    coding = coding_of(concept, list(fhir.MEDICATION_SYSTEMS))
    kept = ~void("MedicationRequest", F.col("status"))
    return resources.select(
        reference_id(F.col("encounter.reference"), "Encounter").alias("hadm_id"),
        F.col("authoredOn").alias("startdate"),
        F.when(kept, name).alias("drug"),
        F.when(kept, tagged_by(fhir.MEDICATION_SYSTEMS, coding["system"], coding["code"])).alias(
            "medication_code"
        ),
        F.col("id").alias("row_id"),
    )


def lab_features(observations: DataFrame) -> DataFrame:
    """Observations -> MIMIC's lab aggregates: laboratory results are tests, abnormal by
    interpretation, HbA1c and glucose by LOINC, names from the code's text or display."""
    concept = F.col("code")
    loinc = code_in(concept, fhir.SYSTEM_LOINC)
    name = F.lower(
        F.trim(F.coalesce(concept["text"], coding_of(concept, [fhir.SYSTEM_LOINC])["display"]))
    )
    interpretation = F.flatten(
        F.transform(F.coalesce(F.col("interpretation"), F.array()), lambda c: c["coding"]["code"])
    )
    is_lab = F.exists(
        F.coalesce(F.col("category"), F.array()),
        lambda c: F.exists(c["coding"], lambda k: k["code"] == fhir.LABORATORY_CATEGORY),
    )
    typed = observations.select(
        reference_id(F.col("encounter.reference"), "Encounter").alias("hadm_id"),
        F.expr("try_to_timestamp(trim(effectiveDateTime))").alias("charttime"),
        F.col("valueQuantity.value").alias("valuenum"),
        loinc.alias("loinc"),
        F.when(F.length(name) > 0, name).alias("label"),
        F.exists(interpretation, lambda c: c.isin(*fhir.ABNORMAL_INTERPRETATIONS)).alias(
            "abnormal"
        ),
        (F.coalesce(is_lab, F.lit(False)) & ~void("Observation", F.col("status"))).alias(HAS_VALUE),
        ROW_TEXT,
    )
    return _lab_aggregates(distinct_rows(typed, "hadm_id"))


def _lab_aggregates(labs: DataFrame) -> DataFrame:
    lab = F.col(HAS_VALUE)
    abnormal = lab & F.coalesce(F.col("abnormal"), F.lit(False))
    time = F.col("charttime")
    grouped = labs.groupBy("hadm_id").agg(
        F.count(F.when(lab, F.lit(1))).cast("int").alias("num_lab_tests"),
        F.count(F.when(abnormal, F.lit(1))).cast("int").alias("num_abnormal_labs"),
        F.max(F.when(lab & F.col("loinc").isin(*fhir.LOINC_HBA1C), F.col("valuenum"))).alias(
            "_hba1c"
        ),
        F.max(F.when(lab & F.col("loinc").isin(*fhir.LOINC_GLUCOSE), F.col("valuenum"))).alias(
            "_glucose"
        ),
        F.collect_list(
            F.when(
                abnormal & F.col("label").isNotNull(), F.struct(time.isNull(), time, F.col("label"))
            )
        ).alias("_abnormal"),
        *child_row_counts(),
    )
    return grouped.select(
        "hadm_id",
        "num_lab_tests",
        "num_abnormal_labs",
        hba1c_band(F.col("_hba1c")).alias("hba1c_result"),
        glucose_band(F.col("_glucose")).alias("max_glucose_result"),
        _first_occurrences(F.col("_abnormal"), "label").alias("abnormal_labs"),
        *COUNT_COLUMNS,
    )


def notes(resources: DataFrame) -> DataFrame:
    """DocumentReferences -> MIMIC NOTEEVENTS columns: a LOINC discharge summary is one, the
    text of its first plain-text attachment that is not blank the text
    (``contracts.fhir.NOTE_CONTENT_TYPE``), a void status or docStatus the error flag."""
    is_summary = code_in(F.col("type"), fhir.SYSTEM_LOINC) == fhir.LOINC_DISCHARGE_SUMMARY
    in_error = void("DocumentReference", F.col("status")) | void(
        "DocumentReference", F.col("docStatus")
    )
    encounter = F.try_element_at(F.col("context.encounter"), F.lit(1))["reference"]
    texts = F.transform(
        F.filter(
            F.coalesce(F.col("content"), F.array()),
            lambda c: c["attachment"]["data"].isNotNull() & _plain_text(c["attachment"]),
        ),
        lambda c: F.unbase64(c["attachment"]["data"]).cast("string"),
    )
    written = F.filter(texts, lambda t: F.length(F.regexp_replace(t, _BLANK, "")) > 0)
    text = F.try_element_at(written, F.lit(1))
    return resources.select(
        F.lit(None).cast("string").alias("row_id"),
        reference_id(encounter, "Encounter").alias("hadm_id"),
        F.col("date").alias("chartdate"),
        F.lit(None).cast("string").alias("charttime"),
        F.when(F.coalesce(is_summary, F.lit(False)), F.lit(DISCHARGE_SUMMARY_CATEGORY)).alias(
            "category"
        ),
        F.when(F.coalesce(in_error, F.lit(False)), F.lit("1")).alias("iserror"),
        text.alias("text"),
    )


_BLANK = r"(?U)\s+"


def _plain_text(attachment: Column) -> Column:
    """Whether an attachment is plain text: ``text/plain`` with any parameters, or untyped."""
    media_type = F.lower(F.trim(F.split(attachment["contentType"], ";").getItem(0)))
    return attachment["contentType"].isNull() | (media_type == fhir.NOTE_CONTENT_TYPE)


def child_details(usable_children: dict[str, DataFrame], ranks: DataFrame) -> dict[str, DataFrame]:
    """Each child type's per-encounter aggregate with its row counts."""
    return {
        "Condition": code_sequences(
            conditions(usable_children["Condition"], ranks), "diagnosis_codes", "num_diagnoses"
        ),
        "Procedure": code_sequences(
            procedures(usable_children["Procedure"]), "procedure_codes", "num_procedures"
        ),
        "MedicationRequest": medication_features(
            prescriptions(usable_children["MedicationRequest"]), text_ids=True
        ),
        "Observation": lab_features(usable_children["Observation"]),
        "DocumentReference": note_features(
            notes(usable_children["DocumentReference"]), text_ids=True
        ),
    }


# --- The source ------------------------------------------------------------------------------


def linked_outcomes(
    screened: dict[str, DataFrame], staged: DataFrame, details: dict[str, DataFrame]
) -> DataFrame:
    """(table, outcome, rows) of Patient and every child type: unusable lines by reason, then
    the Patient lookup and child accounting of the usable ones."""
    encounter_ids = staged.where(F.col("hadm_id").isNotNull()).select("hadm_id").distinct()
    subjects = staged.where(F.col("subject_id").isNotNull()).select("subject_id").distinct()
    patients = (
        parse_patients(usable(screened["Patient"]))
        .select(
            "subject_id", F.col(PATIENT_ROWS).alias(ROWS), F.col(PATIENT_VARIANTS).alias(VARIANTS)
        )
        .join(
            shuffled(subjects.select("subject_id", F.lit(True).alias("_seen"))),
            on="subject_id",
            how="left",
        )
    )
    outcomes = [
        *[screened_outcomes(screened[t], t) for t in ("Patient", *CHILD_TYPES)],
        lookup_table_outcomes(
            "Patient", patients, "subject_id", [(F.col("_seen").isNull(), ORPHAN)]
        ),
        child_table_outcomes(
            details,
            shuffled(encounter_ids),
            {"Observation": NOT_SELECTED, "DocumentReference": NOT_SELECTED},
        ),
    ]
    return reduce(DataFrame.unionByName, outcomes)


def build(
    resources: dict[str, DataFrame], deid_key: str, record_source: str, types_missing: list[str]
) -> cohort.SourceFrames:
    """Return the staged encounters, the outputs and every type's row outcomes."""
    level = PERSISTED
    screened = {
        "Encounter": screen(resources["Encounter"], "Encounter", conflicts=False).persist(level),
        "Patient": screen(resources["Patient"], "Patient", conflicts=False).persist(level),
        **{t: screen(resources[t], t).persist(level) for t in CHILD_TYPES},
    }
    encounters = screened["Encounter"]
    staged = stage(encounters, usable(screened["Patient"]), deid_key).persist(level)
    ranks = diagnosis_ranks(usable(encounters))
    details = {
        name: detail.persist(level)
        for name, detail in child_details(
            {t: usable(screened[t]) for t in CHILD_TYPES}, ranks
        ).items()
    }
    ok = staged.where(F.col("status") == cohort.STATUS_OK)
    kept = with_visits(ok, visit_counts(staged, ok))
    services = shuffled(kept.select("hadm_id", F.col("admitting_service").alias("_service")))
    features = assemble_features(
        kept.drop("admitting_service"),
        [
            *[shuffled(detail) for detail in details.values()],
            services.withColumnRenamed("_service", "admitting_service"),
        ],
        record_source,
    )
    return cohort.SourceFrames(
        staged=staged,
        features=features,
        protected=kept.select("encounter_key", "race", "split"),
        quarantine=cohort.quarantine_rows(staged, INPUT_TABLE),
        input_table=INPUT_TABLE,
        record_source=record_source,
        tables_missing=types_missing,
        linked_outcomes=linked_outcomes(screened, staged, details),
        linked_tables=["Patient", *CHILD_TYPES],
        persisted=[*screened.values(), staged, *details.values()],
    )
