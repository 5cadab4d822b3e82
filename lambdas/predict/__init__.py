"""The prediction API: API Gateway -> this Lambda -> the SageMaker real-time endpoint.

The handler is ``lambdas.predict.app.lambda_handler``. The package imports only the standard
library, boto3, Powertools (with its pydantic) and ``contracts``, so that it runs on the plain
Python runtime with the AWS-managed Powertools layer and imports fast.
"""
