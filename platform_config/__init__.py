"""The platform's settings in ``cdk.json``, read once and validated: standard library and pydantic.

Both the CDK app (``stacks/config.py``, which re-exports these names) and the operator's
training launcher (``training/launch.py``) read a stage's settings through this package, so
that nothing under ``training/`` imports ``stacks/``. It ships in no artifact.
"""
