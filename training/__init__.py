"""Training of the readmission model: ``python -m training.train`` runs a job, locally or in
SageMaker; ``python -m training.launch`` starts one in SageMaker."""
