"""The worklist data API: the care team's ranked list of a day's discharges, read-only."""
