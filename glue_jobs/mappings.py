"""Explicit mapping tables from source vocabularies to the contract's categories.

Every source value is listed; a value that is not listed becomes ``unknown`` and is counted in
the manifest's ``unmapped_values`` (no catch-all hides a new value in the data).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from contracts.encounter import UNKNOWN

# --- MIMIC-III ---------------------------------------------------------------------------

MIMIC_ADMISSION_TYPE: dict[str, str] = {
    "EMERGENCY": "emergency",
    "URGENT": "urgent",
    "ELECTIVE": "elective",
    "NEWBORN": "newborn",
}

MIMIC_ADMISSION_LOCATION: dict[str, str] = {
    "EMERGENCY ROOM ADMIT": "emergency_department",
    "PHYS REFERRAL/NORMAL DELI": "physician_referral",
    "HMO REFERRAL/SICK": "physician_referral",
    "CLINIC REFERRAL/PREMATURE": "clinic_referral",
    "TRANSFER FROM HOSP/EXTRAM": "transfer_hospital",
    "TRANSFER FROM SKILLED NUR": "transfer_nursing_facility",
    "TRANSFER FROM OTHER HEALT": "transfer_other",
    "TRSF WITHIN THIS FACILITY": "transfer_other",
    "** INFO NOT AVAILABLE **": UNKNOWN,
}

MIMIC_DISCHARGE_LOCATION: dict[str, str] = {
    "HOME": "home",
    "HOME HEALTH CARE": "home_health",
    "HOME WITH HOME IV PROVIDR": "home_health",
    "SNF": "skilled_nursing",
    "SNF-MEDICAID ONLY CERTIF": "skilled_nursing",
    "ICF": "long_term_care",
    "LONG TERM CARE HOSPITAL": "long_term_care",
    "REHAB/DISTINCT PART HOSP": "rehabilitation",
    "SHORT TERM HOSPITAL": "transfer_acute",
    "DISC-TRAN CANCER/CHLDRN H": "transfer_acute",
    "DISCH-TRAN TO PSYCH HOSP": "psychiatric",
    "HOSPICE-HOME": "hospice",
    "HOSPICE-MEDICAL FACILITY": "hospice",
    "LEFT AGAINST MEDICAL ADVI": "left_against_advice",
    "DEAD/EXPIRED": "expired",
    "DISC-TRAN TO FEDERAL HC": "other",
    "OTHER FACILITY": "other",
}

MIMIC_GENDER: dict[str, str] = {"F": "F", "M": "M"}

MIMIC_ETHNICITY: dict[str, str] = {
    "WHITE": "white",
    "WHITE - RUSSIAN": "white",
    "WHITE - OTHER EUROPEAN": "white",
    "WHITE - BRAZILIAN": "white",
    "WHITE - EASTERN EUROPEAN": "white",
    "PORTUGUESE": "white",
    "BLACK/AFRICAN AMERICAN": "black",
    "BLACK/AFRICAN": "black",
    "BLACK/CAPE VERDEAN": "black",
    "BLACK/HAITIAN": "black",
    "CARIBBEAN ISLAND": "black",
    "HISPANIC OR LATINO": "hispanic",
    "HISPANIC/LATINO - PUERTO RICAN": "hispanic",
    "HISPANIC/LATINO - DOMINICAN": "hispanic",
    "HISPANIC/LATINO - GUATEMALAN": "hispanic",
    "HISPANIC/LATINO - CUBAN": "hispanic",
    "HISPANIC/LATINO - SALVADORAN": "hispanic",
    "HISPANIC/LATINO - CENTRAL AMERICAN (OTHER)": "hispanic",
    "HISPANIC/LATINO - MEXICAN": "hispanic",
    "HISPANIC/LATINO - COLOMBIAN": "hispanic",
    "HISPANIC/LATINO - HONDURAN": "hispanic",
    "SOUTH AMERICAN": "hispanic",
    "ASIAN": "asian",
    "ASIAN - CHINESE": "asian",
    "ASIAN - ASIAN INDIAN": "asian",
    "ASIAN - VIETNAMESE": "asian",
    "ASIAN - FILIPINO": "asian",
    "ASIAN - CAMBODIAN": "asian",
    "ASIAN - OTHER": "asian",
    "ASIAN - KOREAN": "asian",
    "ASIAN - JAPANESE": "asian",
    "ASIAN - THAI": "asian",
    "AMERICAN INDIAN/ALASKA NATIVE": "other",
    "AMERICAN INDIAN/ALASKA NATIVE FEDERALLY RECOGNIZED TRIBE": "other",
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "other",
    "MIDDLE EASTERN": "other",
    "MULTI RACE ETHNICITY": "other",
    "OTHER": "other",
    "UNKNOWN/NOT SPECIFIED": UNKNOWN,
    "UNABLE TO OBTAIN": UNKNOWN,
    "PATIENT DECLINED TO ANSWER": UNKNOWN,
}

#: MIMIC admission_type values that mark an admission as planned (not a readmission event).
MIMIC_PLANNED_ADMISSION_TYPES = ("ELECTIVE",)
MIMIC_NEWBORN_ADMISSION_TYPE = "NEWBORN"

# --- MIMIC-IV v2/v3 hosp (values as in hosp/admissions and hosp/patients) -----------------
# MIMIC-IV's hosp module has no neonates, so no admission type is a newborn one.

MIMIC4_ADMISSION_TYPE: dict[str, str] = {
    "EW EMER.": "emergency",
    "DIRECT EMER.": "emergency",
    "URGENT": "urgent",
    "ELECTIVE": "elective",
    "SURGICAL SAME DAY ADMISSION": "elective",
    "OBSERVATION ADMIT": "other",
    "EU OBSERVATION": "other",
    "DIRECT OBSERVATION": "other",
    "AMBULATORY OBSERVATION": "other",
}
#: MIMIC-IV admission types of a planned admission (not a readmission event).
MIMIC4_PLANNED_ADMISSION_TYPES = ("ELECTIVE", "SURGICAL SAME DAY ADMISSION")

MIMIC4_ADMISSION_LOCATION: dict[str, str] = {
    "EMERGENCY ROOM": "emergency_department",
    "PHYSICIAN REFERRAL": "physician_referral",
    "WALK-IN/SELF REFERRAL": "physician_referral",
    "CLINIC REFERRAL": "clinic_referral",
    "TRANSFER FROM HOSPITAL": "transfer_hospital",
    "TRANSFER FROM SKILLED NURSING FACILITY": "transfer_nursing_facility",
    "INTERNAL TRANSFER TO OR FROM PSYCH": "transfer_other",
    "AMBULATORY SURGERY TRANSFER": "transfer_other",
    "PACU": "other",
    "PROCEDURE SITE": "other",
    "INFORMATION NOT AVAILABLE": UNKNOWN,
}

MIMIC4_DISCHARGE_LOCATION: dict[str, str] = {
    "HOME": "home",
    "HOME HEALTH CARE": "home_health",
    "SKILLED NURSING FACILITY": "skilled_nursing",
    "REHAB": "rehabilitation",
    "CHRONIC/LONG TERM ACUTE CARE": "long_term_care",
    "ACUTE HOSPITAL": "transfer_acute",
    "PSYCH FACILITY": "psychiatric",
    "HOSPICE": "hospice",
    "AGAINST ADVICE": "left_against_advice",
    "DIED": "expired",
    "ASSISTED LIVING": "other",
    "HEALTHCARE FACILITY": "other",
    "OTHER FACILITY": "other",
}

#: MIMIC-IV ``race`` values (MIMIC-III's ``ethnicity`` values carry over where unchanged).
MIMIC4_RACE: dict[str, str] = {
    **{
        name: category
        for name, category in MIMIC_ETHNICITY.items()
        if name not in ("UNKNOWN/NOT SPECIFIED", "MULTI RACE ETHNICITY")
    },
    "UNKNOWN": UNKNOWN,
    "MULTIPLE RACE/ETHNICITY": "other",
    "WHITE - OTHER EUROPEAN": "white",
    "HISPANIC/LATINO - MEXICAN": "hispanic",
}

#: ``icd_version`` of diagnoses_icd -> code system; of procedures_icd -> code system.
MIMIC4_DIAGNOSIS_SYSTEMS = {"9": CodeSystem.ICD9CM, "10": CodeSystem.ICD10CM}
MIMIC4_PROCEDURE_SYSTEMS = {"9": CodeSystem.ICD9PCS, "10": CodeSystem.ICD10PCS}
#: MIMIC-IV note module: the note type of a discharge summary (note/discharge.csv.gz).
MIMIC4_DISCHARGE_NOTE_TYPE = "DS"

# --- UCI Diabetes-130 (ids as in IDs_mapping.csv) ------------------------------------------

UCI_ADMISSION_TYPE: dict[str, str] = {
    "1": "emergency",  # Emergency
    "2": "urgent",  # Urgent
    "3": "elective",  # Elective
    "4": "newborn",  # Newborn (excluded from the cohort)
    "5": UNKNOWN,  # Not Available
    "6": UNKNOWN,  # NULL
    "7": "emergency",  # Trauma Center
    "8": UNKNOWN,  # Not Mapped
}

UCI_DISCHARGE_DISPOSITION: dict[str, str] = {
    "1": "home",  # Discharged to home
    "2": "transfer_acute",  # another short term hospital
    "3": "skilled_nursing",  # SNF
    "4": "long_term_care",  # ICF
    "5": "other",  # another type of inpatient care institution
    "6": "home_health",  # home with home health service
    "7": "left_against_advice",  # Left AMA
    "8": "home_health",  # home under care of Home IV provider
    "9": "other",  # Admitted as an inpatient to this hospital
    "10": "transfer_acute",  # Neonate discharged to another hospital
    "11": "expired",  # Expired (excluded)
    "12": "other",  # Still patient or expected to return for outpatient services
    "13": "hospice",  # Hospice / home (excluded)
    "14": "hospice",  # Hospice / medical facility (excluded)
    "15": "skilled_nursing",  # Medicare approved swing bed
    "16": "other",  # referred another institution for outpatient services
    "17": "other",  # referred to this institution for outpatient services
    "18": UNKNOWN,  # NULL
    "19": "expired",  # Expired at home, hospice (excluded)
    "20": "expired",  # Expired in a medical facility, hospice (excluded)
    "21": "expired",  # Expired, place unknown (excluded)
    "22": "rehabilitation",  # another rehab facility
    "23": "long_term_care",  # long term care hospital
    "24": "skilled_nursing",  # nursing facility certified under Medicaid
    "25": UNKNOWN,  # Not Mapped
    "26": UNKNOWN,  # Unknown/Invalid
    "27": "other",  # federal health care facility
    "28": "psychiatric",  # psychiatric hospital or unit
    "29": "transfer_acute",  # Critical Access Hospital
    "30": "other",  # another type of health care institution
}

UCI_ADMISSION_SOURCE: dict[str, str] = {
    "1": "physician_referral",  # Physician Referral
    "2": "clinic_referral",  # Clinic Referral
    "3": "physician_referral",  # HMO Referral
    "4": "transfer_hospital",  # Transfer from a hospital
    "5": "transfer_nursing_facility",  # Transfer from a SNF
    "6": "transfer_other",  # Transfer from another health care facility
    "7": "emergency_department",  # Emergency Room
    "8": "other",  # Court/Law Enforcement
    "9": UNKNOWN,  # Not Available
    "10": "transfer_hospital",  # Transfer from critical access hospital
    "11": "other",  # Normal Delivery
    "12": "other",  # Premature Delivery
    "13": "other",  # Sick Baby
    "14": "other",  # Extramural Birth
    "15": UNKNOWN,  # Not Available
    "17": UNKNOWN,  # NULL
    "18": "transfer_other",  # Transfer From Another Home Health Agency
    "19": "other",  # Readmission to Same Home Health Agency
    "20": UNKNOWN,  # Not Mapped
    "21": UNKNOWN,  # Unknown/Invalid
    "22": "transfer_hospital",  # Transfer from hospital inpt/same fac, separate claim
    "23": "other",  # Born inside this hospital
    "24": "other",  # Born outside this hospital
    "25": "transfer_other",  # Transfer from Ambulatory Surgery Center
    "26": "transfer_other",  # Transfer from Hospice
}

UCI_GENDER: dict[str, str] = {"Female": "F", "Male": "M", "Unknown/Invalid": UNKNOWN}

UCI_RACE: dict[str, str] = {
    "Caucasian": "white",
    "AfricanAmerican": "black",
    "Hispanic": "hispanic",
    "Asian": "asian",
    "Other": "other",
    "?": UNKNOWN,
}

UCI_HBA1C: dict[str, str] = {
    "None": "not_measured",
    "Norm": "normal",
    ">7": "above_7",
    ">8": "above_8",
}

UCI_GLUCOSE: dict[str, str] = {
    "None": "not_measured",
    "Norm": "normal",
    ">200": "above_200",
    ">300": "above_300",
}

#: Discharge dispositions that end the index admission's eligibility, with the manifest reason.
UCI_EXCLUDED_DISPOSITIONS: dict[str, str] = {
    "11": "in_hospital_death",
    "19": "in_hospital_death",
    "20": "in_hospital_death",
    "21": "in_hospital_death",
    "13": "discharged_to_hospice",
    "14": "discharged_to_hospice",
}
UCI_NEWBORN_ADMISSION_TYPE_ID = "4"


def lookup(mapping: Mapping[str, str], value: Column) -> Column:
    """Return the mapped value of a string column, null where the value is not in the table."""
    literal_map = F.create_map(*[F.lit(item) for item in chain.from_iterable(mapping.items())])
    return literal_map[value]


def map_category(mapping: Mapping[str, str], value: Column) -> Column:
    """Return the mapped category, ``unknown`` for a value missing from the table (counted)."""
    return F.coalesce(lookup(mapping, value), F.lit(UNKNOWN))
