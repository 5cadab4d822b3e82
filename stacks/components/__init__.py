"""Reusable constructs, each owning one concern (not named ``constructs`` so as not to
shadow the ``constructs`` library)."""
