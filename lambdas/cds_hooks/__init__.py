"""The CDS Hooks 2.0 service of the prediction API: discovery, the discharge hook, its cards.

Served by the prediction API's function (``lambdas/predict/app.py`` registers the routes), so
a hook call is scored on exactly the predict path: the same mapping, de-identification,
endpoint call and errors.
"""
