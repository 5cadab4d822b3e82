"""FHIR R4 -> the canonical encounter record: the one mapping the prediction API's FHIR input
and the CDS Hooks service use, with the terminology the FHIR ETL source shares
(``contracts.fhir``). Standard library and ``contracts`` only, so that it ships in a Lambda
asset unchanged and imports in the Spark tests.
"""

from fhir_mapping.errors import MappingError, Reason
from fhir_mapping.record import MappedRecord, map_bundle, map_resources

__all__ = ["MappedRecord", "MappingError", "Reason", "map_bundle", "map_resources"]
