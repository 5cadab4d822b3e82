"""The registrar: quality-gates a trained model and registers it for manual approval."""
