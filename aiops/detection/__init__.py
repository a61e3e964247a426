"""Anomaly detection over spans, all pure logic: EWMA baselines (``ewma``), robust baselines of
durations and their evidence gate (``robust``), the anomaly rules over one window (``rules``), self
time (``selftime``), calls between services (``edges``) and ranking services by evidence
(``evidence``). Spans and baselines in, anomalies and suspects out. It may import only the root
modules (``kinds``, ``settings``) and telemetry's pure modules (``columns``, ``rows``): never Flask,
SQLAlchemy or the OpenTelemetry SDK (``tests/test_architecture.py``).
"""
