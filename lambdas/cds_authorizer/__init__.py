"""API Gateway Lambda authorizer of the CDS Hooks routes: the EHR's JWT, verified."""
