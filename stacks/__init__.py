"""CDK stacks of the readmission platform and the configuration they are built from."""
