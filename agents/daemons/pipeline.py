"""The one table of the pipeline's stages: which daemon runs each, which journal stage it takes
work from and which it hands work on to.

Everything that lists stages reads it: the composition root (`agents.app.wiring`) builds the
stages and their in-process wake-up queues from it, `proofmint agent` opens a Redis stream for
every hand-off in it, and the CLI offers its daemons. A hand-off is a journal stage that one
stage writes and another takes: a wake-up on it only saves the taker an idle poll, so a daemon in
another process is woken by Redis exactly where an in-process one is woken by a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agents.runtime import jobs


@dataclass(frozen=True)
class StageSpec:
    """One stage of the pipeline: run by `daemon`, taking jobs at `inbox`, leaving them at
    `outbox` (None: the stage's work is its own kind of job, or its exits are final)."""

    name: str
    daemon: str
    inbox: str | None
    outbox: str | None
    registration: str | None = None
    """For the registrar's stages: the registration mode that runs it (None: every mode)."""


MANY: Final = "many"
COMMIT_CLAIM: Final = "commit-claim"
REGISTRATIONS: Final = (MANY, COMMIT_CLAIM)

STAGES: Final = (
    StageSpec("generator", "generator", jobs.REQUESTED, jobs.GENERATED),
    StageSpec("curator", "curator", jobs.GENERATED, jobs.CURATED),
    StageSpec("publisher", "publisher", jobs.CURATED, jobs.PUBLISHED),
    StageSpec("registrar", "registrar", jobs.PUBLISHED, jobs.REGISTERED, registration=MANY),
    StageSpec("registrar", "registrar", jobs.PUBLISHED, jobs.COMMITTED, registration=COMMIT_CLAIM),
    StageSpec("claimer", "registrar", jobs.COMMITTED, jobs.REGISTERED, registration=COMMIT_CLAIM),
    StageSpec("deliver", "registrar", jobs.REGISTERED, jobs.DELIVERED),
    StageSpec("upscaler", "upscaler", jobs.UPSCALE_WAITING, jobs.GENERATED),
    StageSpec("prover", "prover", jobs.DELIVERED, None),
    StageSpec("settlement", "settlement", None, None),
    StageSpec("sweeper", "settlement", None, None),
    StageSpec("upto", "settlement", None, None),
)

#: The daemons, in pipeline order: what `proofmint agent NAME` accepts.
DAEMONS: Final = tuple(dict.fromkeys(spec.daemon for spec in STAGES))

#: The daemons that run only when asked for by name (`proofmint up --upscale`, `proofmint agent
#: upscaler`): the rest are what a pipeline runs by default.
OPTIONAL_DAEMONS: Final = ("upscaler",)
DEFAULT_DAEMONS: Final = tuple(d for d in DAEMONS if d not in OPTIONAL_DAEMONS)
#: Every journal stage a wake-up travels on (each is some stage's inbox).
HANDOFFS: Final = tuple(dict.fromkeys(spec.inbox for spec in STAGES if spec.inbox is not None))

#: The stages whose jobs are still on their way to publication (and to delivery): a batching
#: stage downstream does not linger for more when none are there.
BEFORE_PUBLISHED: Final = (jobs.REQUESTED, jobs.GENERATED, jobs.CURATED)
BEFORE_DELIVERED: Final = (*BEFORE_PUBLISHED, jobs.PUBLISHED, jobs.COMMITTED, jobs.REGISTERED)


def stages_of(names: tuple[str, ...] | list[str], registration: str = MANY) -> list[StageSpec]:
    """The stages the daemons in `names` run, in pipeline order; `ValueError` for an unknown
    daemon or registration mode."""
    if registration not in REGISTRATIONS:
        raise ValueError(f"registration is {' or '.join(map(repr, REGISTRATIONS))}, not {registration!r}")
    unknown = sorted(set(names) - set(DAEMONS))
    if unknown:
        raise ValueError(f"unknown daemon(s) {unknown}; known: {', '.join(DAEMONS)}")
    return [spec for spec in STAGES if spec.daemon in names and spec.registration in (None, registration)]
