"""The deployer: serves the latest approved model package version on the real-time endpoint.

The handler is ``lambdas.deployer.app.lambda_handler``, triggered by EventBridge "SageMaker Model
Package State Change" events. The package imports only the standard library, boto3, Powertools
(with its pydantic) and ``contracts``.
"""
