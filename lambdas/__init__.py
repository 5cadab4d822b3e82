"""AWS Lambda functions of the platform; each sub-package is one function."""
