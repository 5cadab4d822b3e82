"""Model-side code packaged into ``model.tar.gz``'s ``code/``: the feature encoder and the model.

Training and the serving hooks import the same ``encoding`` and ``model`` modules so that a
request is encoded and scored exactly as the training rows were.
"""
