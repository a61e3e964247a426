"""Metrics as RCA evidence: which metric names speak of a service's resources, their robust normal
bands, and what a band left says about a suspect (pure logic apart from :mod:`aiops.metrics.feed`)."""
