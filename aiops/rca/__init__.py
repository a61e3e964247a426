"""Root-cause analysis over traces (``analysis``): anomalies and spans in, groups of anomalies with
a ranked root cause and its propagation path out. Pure logic: it may import ``aiops.logs``' pure
modules, ``aiops.detection``, the root modules and telemetry's pure modules, and nothing that needs
the app or the database (``tests/test_architecture.py``).
"""
