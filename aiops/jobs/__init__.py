"""The scheduled work: the worker process and its job table (``worker``), one detection cycle
(``cycle``), and cycles asked for on demand (``on_demand``, woken by ``doorbell``). It may import
every pipeline stage below it (``aiops.outbox`` down to ``aiops.store``), the root modules and
telemetry; never ``aiops.web`` or ``aiops.cli``, which call into it.
"""
