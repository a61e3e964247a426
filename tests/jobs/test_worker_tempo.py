"""The worker polls the Tempo source when ``AIOPS_TEMPO_URL`` is set, and only then."""

from __future__ import annotations

import time

from aiops.jobs import worker
from aiops.settings import Settings
from tests.conftest import sqlite_only
from tests.support.tempo_server import Answer, FakeTempo, documented_search, documented_trace

TRACE = "5b8efff798038103d269b633813fc700"


def test_the_job_exists_only_with_a_url_and_runs_every_interval():
    assert worker.TEMPO_JOB_ID not in {j.id for j in worker.jobs(Settings())}
    settings = Settings(tempo_url="http://tempo:3200", tempo_interval=5.0)
    job = next(j for j in worker.jobs(settings, detection=False) if j.id == worker.TEMPO_JOB_ID)
    assert job.seconds == 5.0 and job.run is worker.Worker.pull_tempo


@sqlite_only
def test_a_worker_s_polls_share_one_source(app_factory):
    with FakeTempo() as tempo:
        now = time.time_ns()
        tempo.search = lambda args: Answer(json=documented_search([TRACE], now))
        tempo.traces[TRACE] = Answer(json=documented_trace(TRACE, ["eee19b7ec3c1b100"], now, "billing"))
        app = app_factory(AIOPS_TEMPO_URL=tempo.url, AIOPS_TEMPO_TIMEOUT=2.0)
        runner = worker.Worker(app)  # not started: the job body alone
        first, second = runner.pull_tempo(), runner.pull_tempo()
    assert (first.stored, first.failures) == (1, {})
    assert (second.fetched, second.unchanged) == (0, 1)  # the same source remembers the trace
