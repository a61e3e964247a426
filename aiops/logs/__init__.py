"""The log side of detection. Pure logic: templates (``mining``), which log patterns changed
(``signals``), code paths no longer logged (``paths``) and what logs add to RCA (``clues``); and
their database edge: the log memory in the store (``storage``) and where a cycle gets its lines
(``feed``). It may import ``aiops.detection``, ``aiops.store``, the root modules and telemetry; the
pure modules nothing that needs the app or the database.
"""
