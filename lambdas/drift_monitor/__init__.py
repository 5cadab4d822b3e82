"""The drift monitor: hourly PSI of captured endpoint traffic against the training baseline.

The handler is ``lambdas.drift_monitor.app.lambda_handler``. The package imports only the
standard library, boto3, Powertools and ``contracts``, so that it runs on the plain Python
runtime with the AWS-managed Powertools layer.
"""
