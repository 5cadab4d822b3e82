"""The platform in a box: the deployed components, wired together on one machine.

Nothing here re-implements a component: the demo runs the Glue job's transforms, the training
script, the inference hooks and the Lambda handlers themselves. This package only supplies what
AWS would: a control plane (moto), an API Gateway (an HTTP bridge to the handlers) and process
management.
"""
