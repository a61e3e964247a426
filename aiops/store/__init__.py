"""The product's persistent state: the SQLAlchemy models (``models``; ``declared``: what users
declare, SLOs, silences, rules and their alerts) and the schema with its Alembic migrations
(``schema``, ``migrations/``). Below every pipeline stage: it may import the root modules and
telemetry (the shared database handle), nothing above.
"""
