"""The care team's worklist: the store that nightly batch scoring fills and the page reads."""
