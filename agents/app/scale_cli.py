"""`proofmint scale`: how many workers each stage needs, from the agents' own metrics.

It scrapes every given `/metrics` endpoint twice, `--interval` seconds apart, and per journal
stage (the stage a daemon takes its jobs from) reads:
- the backlog B (`proofmint_backlog`: jobs ready to claim; the journal's, so any agent reports it)
  and the oldest ready job's age;
- the throughput X: jobs processed in the interval by the scraped workers of that stage
  (`proofmint_processed_jobs_total`), per second;
- one worker's capacity: jobs per busy second (`proofmint_processed_jobs_total` over
  `proofmint_busy_seconds_total`, in the interval, or since start when the interval saw none);
- the arrival rate: what left plus what the backlog grew, per second.

Workers needed = ceil((arrivals + B / target) / capacity): enough to keep up with what arrives
and to drain what waits within the target latency. A stage no scraped worker runs has no
measured capacity; it is reported as needing workers when work waits for it.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass

import click

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class ScrapeError(click.ClickException):
    """An endpoint that did not answer with Prometheus metrics."""


def scrape(url: str, *, timeout_s: float = 5.0) -> Sample:
    """One endpoint's samples, keyed by (name, sorted labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode("utf8")
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
        raise ScrapeError(f"{url}: {getattr(error, 'reason', error)}") from None
    samples: Sample = {}
    families = 0
    try:
        for family in text_string_to_metric_families(text):
            families += family.name.startswith("proofmint_")
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    except ValueError as error:
        raise ScrapeError(f"{url}: not Prometheus metrics ({error})") from None
    if not families:
        raise ScrapeError(f"{url}: no proofmint metrics there (is it an agent's --metrics-port /metrics?)")
    return samples


@dataclass(frozen=True)
class StagePlan:
    stage: str
    steps: list[str]
    backlog: int
    oldest_age_s: float
    throughput_per_s: float
    arrivals_per_s: float
    capacity_per_worker_per_s: float | None
    workers: int
    workers_needed: int | None
    behind: bool


def _by_stage(samples: Sample, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for (metric, labels), value in samples.items():
        if metric == name:
            stage = dict(labels).get("stage")
            if stage is not None:
                found[stage] = max(found.get(stage, 0.0), value)
    return found


def _per_step(samples: Sample, name: str) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for (metric, labels), value in samples.items():
        if metric == name:
            keyed = dict(labels)
            found[(keyed["stage"], keyed["step"])] = value
    return found


def plan(before: list[Sample], after: list[Sample], *, interval_s: float, target_latency_s: float) -> list[StagePlan]:
    """The advice from two scrapes of the same endpoints (`before[i]` and `after[i]` are one
    endpoint's), `interval_s` apart."""
    backlog_before: dict[str, float] = {}
    backlog: dict[str, float] = {}
    age: dict[str, float] = {}
    for sample in before:
        for stage, value in _by_stage(sample, "proofmint_backlog").items():
            backlog_before[stage] = max(backlog_before.get(stage, 0.0), value)
    for sample in after:
        for stage, value in _by_stage(sample, "proofmint_backlog").items():
            backlog[stage] = max(backlog.get(stage, 0.0), value)
        for stage, value in _by_stage(sample, "proofmint_oldest_job_age_seconds").items():
            age[stage] = max(age.get(stage, 0.0), value)
    done: dict[str, float] = defaultdict(float)
    busy: dict[str, float] = defaultdict(float)
    done_total: dict[str, float] = defaultdict(float)
    busy_total: dict[str, float] = defaultdict(float)
    workers: dict[str, int] = defaultdict(int)
    steps: dict[str, set[str]] = defaultdict(set)
    for first, second in zip(before, after, strict=True):
        jobs_1, jobs_2 = (
            _per_step(first, "proofmint_processed_jobs_total"),
            _per_step(second, "proofmint_processed_jobs_total"),
        )
        busy_1, busy_2 = (
            _per_step(first, "proofmint_busy_seconds_total"),
            _per_step(second, "proofmint_busy_seconds_total"),
        )
        for stage in {stage for stage, _ in jobs_2}:
            workers[stage] += 1
        for (stage, step), total in jobs_2.items():
            steps[stage].add(step)
            done[stage] += total - jobs_1.get((stage, step), 0.0)
            busy[stage] += busy_2.get((stage, step), 0.0) - busy_1.get((stage, step), 0.0)
            done_total[stage] += total
            busy_total[stage] += busy_2.get((stage, step), 0.0)
    plans = []
    for stage in sorted(set(backlog) | set(workers)):
        throughput = done[stage] / interval_s
        arrivals = max(0.0, throughput + (backlog.get(stage, 0.0) - backlog_before.get(stage, 0.0)) / interval_s)
        if busy[stage] > 0 and done[stage] > 0:
            capacity: float | None = done[stage] / busy[stage]
        elif busy_total[stage] > 0 and done_total[stage] > 0:
            capacity = done_total[stage] / busy_total[stage]
        else:
            capacity = None
        waiting = backlog.get(stage, 0.0)
        demand = arrivals + waiting / target_latency_s
        if capacity is not None:
            needed: int | None = math.ceil(demand / capacity) if demand > 0 else 0
        else:
            needed = None
        plans.append(
            StagePlan(
                stage=stage,
                steps=sorted(steps[stage]),
                backlog=int(waiting),
                oldest_age_s=round(age.get(stage, 0.0), 3),
                throughput_per_s=round(throughput, 3),
                arrivals_per_s=round(arrivals, 3),
                capacity_per_worker_per_s=None if capacity is None else round(capacity, 3),
                workers=workers[stage],
                workers_needed=needed,
                behind=age.get(stage, 0.0) > target_latency_s,
            )
        )
    return plans


def _advice(p: StagePlan) -> str:
    if p.workers_needed is None:
        return "at least 1 (no worker measured)" if p.backlog else "-"
    change = p.workers_needed - p.workers
    return f"{p.workers_needed} ({'+' if change > 0 else ''}{change})" if change else f"{p.workers_needed} (as now)"


@click.command("scale")
@click.option(
    "--metrics",
    "urls",
    multiple=True,
    required=True,
    help="An agent's metrics URL, e.g. http://host:9464/metrics (repeat: one per worker process)",
)
@click.option(
    "--target-latency",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds a job may wait at a stage",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1, max=3600),
    default=10.0,
    show_default=True,
    help="Seconds between the two scrapes the rates come from",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per stage, one per line")
def scale_command(urls: tuple[str, ...], target_latency: float, interval: float, as_json: bool) -> None:
    """How many workers each stage needs for a target latency, from the agents' /metrics."""
    before = [scrape(url) for url in urls]
    click.echo(f"scraped {len(urls)} endpoint(s); measuring for {interval:g} s", err=True)
    time.sleep(interval)
    after = [scrape(url) for url in urls]
    plans = plan(before, after, interval_s=interval, target_latency_s=target_latency)
    if as_json:
        for item in plans:
            click.echo(json.dumps(asdict(item), sort_keys=True))
        return
    click.echo(
        f"{'stage':<12} {'backlog':>8} {'oldest s':>9} {'done/s':>8} {'in/s':>8} {'cap/worker/s':>13}"
        f" {'workers':>8}  needed"
    )
    for p in plans:
        capacity = "-" if p.capacity_per_worker_per_s is None else f"{p.capacity_per_worker_per_s:.2f}"
        flag = "  behind: the oldest job waited longer than the target" if p.behind else ""
        click.echo(
            f"{p.stage:<12} {p.backlog:>8} {p.oldest_age_s:>9.1f} {p.throughput_per_s:>8.2f} {p.arrivals_per_s:>8.2f}"
            f" {capacity:>13} {p.workers:>8}  {_advice(p)}{flag}"
        )
