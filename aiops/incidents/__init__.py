"""From RCA groups to incidents. Pure logic: the incident rules (``rules``: matching, severity,
escalation, titles, episodes), the storm ceiling (``storm``) and plain-language reports
(``reports``); ``lifecycle`` applies the rules to the incident rows in the cycle's transaction. It
may import ``aiops.rca``, ``aiops.logs``, ``aiops.detection``, ``aiops.store``, the root modules and
telemetry; never the outbox, the jobs or the web edge.
"""
