"""The Flask edge: the ``/aiops`` JSON API (``api``), Tempo's query API (``tempo_api``: ``/api/search``,
``/api/traces/<id>``), the HTML pages (``pages``), ``GET /openapi.json``,
``/health``, errors, auth and security guards, and the queries the API and pages share
(``incident_queries``, ``log_queries``, ``endpoints``). The top layer, beside ``aiops.cli``: it may
import every aiops package below it and telemetry; never ``aiops.cli`` or ``simulation``.
"""
