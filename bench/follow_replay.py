"""The following-the-grid replay: long-lived read replicas moved by tiers and the descheduler.

The operator's read pool (``bench.readpool``: its StatefulSet as written, the main pod on the
least-allocated node, the same fleets and scheduler model ``bench.spread``) runs for each of the
four seasonal weeks of 2024 with a fixed number of replicas, created at the start of the week and
never restarted except by a move. Policies, all charged at the actual hourly intensity:

* ``agnostic`` — no terms: the scheduler model spreads the pool once;
* ``create-time`` — today's webhook for such a pool (preferred region terms plus the pool-sized
  required set, ``bench.readpool``'s ``pool/replicas``), decided once at creation;
* ``following`` — the product's tiers: every hour the tier maths (``plan_tiers`` with the default
  ``TierPolicy``) on the webhook's ranking moves the node labels; every descheduling interval the
  descheduler model (``bench.descheduler``) evicts; the StatefulSet recreates the pod at once, the
  webhook admits it with tier terms (``webhook.follow``: ``tier_terms``, ``pool_tiers`` over
  ``tier_hosts``), the scheduler model places it, and it is not ready for the catch-up time;
* ``oracle`` — every hour the cheapest placement the hard rules allow, moves free and instant:
  region by region from the cheapest, each filled under the rules with that region required
  (as pods with per-pod region sets can be), which binds the pool to its cheapest free nodes;
* ``ranked-hourly`` — the same free hourly moves, region by region in the order of the webhook's
  own ranking (24 h expected grid intensity): what any follower of that ranking could at best do.

Emissions are charged per descheduling interval on the node each pod runs on, ready or not.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.carbon import FORECAST_HOURS, HOURS
from bench.descheduler import Cluster, Profile, Replica, cycle, ready
from bench.readpool import (
    Creation,
    hard_rules,
    hpa_max,
    main_node,
    policies,
    pool_view,
)
from bench.replay import (
    Decision,
    Region,
    replica_hour_grams,
)
from bench.spread import HardRules, ZonedFleet, place_spread
from bench.traces import Traces, snapshot_at
from shared.cluster.constraints import PoolConstraints
from shared.cluster.room import holds_pool
from shared.core.models import RegionInfo
from shared.scoring.ranking import Ranking, rank
from shared.scoring.tiers import TIER_LABEL, RegionTier, TierPolicy, node_tiers, plan_tiers
from shared.settings import CarbonSettings
from webhook.follow import pool_tiers, tier_hosts, tier_terms

HORIZON = CarbonSettings().horizon_hours
"""The ranking horizon the tier component shares with the webhook (default 24 h)."""


@dataclass
class Tally:
    """One policy's totals over one or more weeks."""

    grams: float = 0.0
    served_minutes: int = 0
    wanted_minutes: int = 0
    not_ready_minutes: int = 0
    evictions: int = 0
    futile_evictions: int = 0
    """Evictions whose replacement landed on no greener tier than the pod it replaced."""
    tier_changes: int = 0
    """Region tier changes (new regions not counted)."""
    min_ready: int | None = None
    replica_days: float = 0.0

    def charge(self, grams_per_hour: float, minutes: int) -> None:
        self.grams += grams_per_hour * minutes / 60
        self.served_minutes += minutes

    def saw_ready(self, count: int) -> None:
        self.min_ready = count if self.min_ready is None else min(self.min_ready, count)

    def merged(self, other: Tally) -> Tally:
        lows = [v for v in (self.min_ready, other.min_ready) if v is not None]
        return Tally(
            grams=self.grams + other.grams,
            served_minutes=self.served_minutes + other.served_minutes,
            wanted_minutes=self.wanted_minutes + other.wanted_minutes,
            not_ready_minutes=self.not_ready_minutes + other.not_ready_minutes,
            evictions=self.evictions + other.evictions,
            futile_evictions=self.futile_evictions + other.futile_evictions,
            tier_changes=self.tier_changes + other.tier_changes,
            min_ready=min(lows) if lows else None,
            replica_days=self.replica_days + other.replica_days,
        )

    @property
    def g_per_replica_hour(self) -> float:
        return 60 * self.grams / self.served_minutes if self.served_minutes else math.nan


@dataclass(frozen=True, eq=False)
class Week:
    """One replayed week of one pool: the fleet, the data and what the webhook ranks with."""

    model: ZonedFleet
    pool: PoolConstraints
    traces: Traces
    infos: Sequence[RegionInfo]
    size: int
    hours: int = HOURS

    @functools.cached_property
    def rules(self) -> HardRules:
        return hard_rules(self.pool)

    @functools.cached_property
    def main(self) -> str:
        return main_node(self.model.fleet)

    @functools.cached_property
    def regions(self) -> dict[str, Region]:
        """Node → its region."""
        fleet = self.model.fleet
        return {node.name: fleet.region(node.region) for node in fleet.nodes}

    @functools.cached_property
    def _rankings(self) -> dict[int, Ranking]:
        return {}

    def ranking(self, hour: int) -> Ranking:
        """The webhook's ranking at ``hour`` (the tier component ranks the same way)."""
        if hour not in self._rankings:
            snapshot = snapshot_at(self.traces, self.infos, hour, forecast_hours=FORECAST_HOURS)
            names = self.model.fleet.region_names
            now = self.traces.time(hour)
            self._rankings[hour] = rank(snapshot, names, now=now, horizon_hours=HORIZON)
        return self._rankings[hour]

    def grams_per_hour(self, node: str, hour: int) -> float:
        """One replica's emissions per hour on ``node`` at the hour's actual intensity."""
        region = self.regions[node]
        return replica_hour_grams(region, self.traces.at(region.zone, hour))

    def bind(self, decision: Decision, bound: Iterable[str]) -> str | None:
        """Where the scheduler model puts one more pool pod, the others on ``bound``."""
        matching = Counter(bound)
        matching[self.main] += 1
        used = {node: count * self.pool.cpu_millis for node, count in matching.items()}
        node = place_spread(decision, self.model, self.rules, matching, used, self.pool.cpu_millis)
        return None if node is None else node.name


def placed_once(week: Week, decide: Callable[[Creation], Decision]) -> Tally:
    """A pool placed at the start of the week and never moved."""
    bound: list[str] = []
    for _ in range(week.size):
        hosts, placed = pool_view(week.model, week.pool, bound, week.main)
        creation = Creation(0, week.hours, week.size, hpa_max(week.size), len(bound), hosts, placed)
        node = week.bind(decide(creation), bound)
        if node is None:
            break  # OrderedReady: nothing after a Pending pod
        bound.append(node)
    tally = _tally(week)
    for hour in range(week.hours):
        for node in bound:
            tally.charge(week.grams_per_hour(node, hour), 60)
    tally.saw_ready(len(bound))
    return tally


def oracle(week: Week) -> Tally:
    """Every hour the pool on its cheapest feasible placement (``oracle_nodes``)."""
    return hourly(week, oracle_nodes)


def ranked_hourly(week: Week) -> Tally:
    """Every hour the pool on the greenest regions by the webhook's ranking, moves free: the
    most any follower of that ranking could save (``ranked_nodes``)."""
    return hourly(week, ranked_nodes)


def hourly(week: Week, nodes_at: Callable[[Week, int], Sequence[str]]) -> Tally:
    tally = _tally(week)
    for hour in range(week.hours):
        nodes = nodes_at(week, hour)
        for node in nodes:
            tally.charge(week.grams_per_hour(node, hour), 60)
        tally.saw_ready(len(nodes))
    return tally


def oracle_nodes(week: Week, hour: int) -> tuple[str, ...]:
    """The pool placed region by region, cheapest region first at this hour's actual cost, each
    region filled as far as the hard rules let pods that require it alone go."""
    fleet = week.model.fleet
    cost = {r.name: replica_hour_grams(r, week.traces.at(r.zone, hour)) for r in fleet.regions}
    return _filled(week, tuple(sorted(cost, key=lambda name: (cost[name], name))))


def ranked_nodes(week: Week, hour: int) -> tuple[str, ...]:
    """As ``oracle_nodes``, in the order of the ranking the webhook and the tiers use."""
    return _filled(week, tuple(score.region for score in week.ranking(hour).scores))


@functools.lru_cache(maxsize=4096)
def _filled(week: Week, order: tuple[str, ...]) -> tuple[str, ...]:
    # The placement depends on the order only; hours often share it.
    bound: list[str] = []
    for region in order:
        only = Decision(((region,),), frozenset({region}))
        while len(bound) < week.size:
            node = week.bind(only, bound)
            if node is None:
                break
            bound.append(node)
    return tuple(bound)


class Following:
    """The tier component, the webhook's tier terms, the descheduler and the scheduler."""

    def __init__(self, week: Week, profile: Profile, policy: TierPolicy) -> None:
        self.week, self.profile, self.policy = week, profile, policy
        fleet = week.model.fleet
        self.names = fleet.region_names
        self.node_regions: dict[str, str | None] = {n.name: n.region for n in fleet.nodes}
        self.region_nodes = dict(Counter(n.region for n in fleet.nodes))
        self.free = {n.name: n.free_millis for n in fleet.nodes}
        self.tiers: dict[str, RegionTier] = {}
        self.labels: dict[str, int] = {}
        self.replicas: dict[int, Replica] = {}
        self.pending: dict[int, Replica] = {}
        self.tally = _tally(week)

    def run(self) -> Tally:
        week, step = self.week, self.profile.interval_minutes
        for hour in range(week.hours):
            self.relabel(hour)
            for minute in range(hour * 60, (hour + 1) * 60, step):
                if hour == 0 and minute == 0:
                    self.create_pool()
                self.schedule_pending(minute)
                self.deschedule(minute)
                self.tally.saw_ready(ready(self.replicas.values(), minute))
                for replica in self.replicas.values():
                    self.tally.charge(week.grams_per_hour(replica.node, hour), step)
                    late = min(step, max(0, replica.ready_at - minute))
                    self.tally.not_ready_minutes += late
        return self.tally

    def relabel(self, hour: int) -> None:
        """The tier component's cycle at the top of the hour, when the carbon data changes."""
        plan = plan_tiers(
            self.tiers,
            self.week.ranking(hour),
            now=self.week.traces.time(hour),
            policy=self.policy,
            nodes=self.region_nodes,
            # Changes happen at the top of an hour; the last ones are an hour old now.
            changed_nodes_last_hour=0,
        )
        self.tally.tier_changes += sum(1 for c in plan.changes if c.before is not None)
        self.tiers = dict(plan.tiers)
        self.labels = node_tiers(self.tiers, self.node_regions)

    def create_pool(self) -> None:
        """The StatefulSet's pods at the start of the week, long since caught up."""
        for ordinal in range(self.week.size):
            replica = self.admit(ordinal, created=-24 * 60)
            node = self.week.bind(self.decision(replica), self.bound())
            if node is None:
                self.pending[ordinal] = replica
                return  # OrderedReady: nothing after a Pending pod
            self.replicas[ordinal] = dataclasses.replace(replica, node=node, ready_at=0)

    def admit(self, ordinal: int, *, created: int) -> Replica:
        """The webhook's decision for a following pool pod (``webhook.admission``): terms per
        tier present, the smallest tier prefix whose nodes hold the rest of the pool."""
        week = self.week
        bound = self.bound()
        hosts, placed = pool_view(week.model, week.pool, bound, week.main)
        labelled = tuple(
            dataclasses.replace(h, labels={**h.labels, TIER_LABEL: str(self.labels[h.name])})
            for h in hosts
            if h.name in self.labels
        )
        present = Counter(self.labels.values())
        holds = holds_pool(
            week.pool, tier_hosts(labelled), placed, wanted=max(1, week.size - len(bound))
        )
        top = pool_tiers(present, holds)
        return Replica(ordinal, "", created, created, tier_terms(present), top)

    def decision(self, replica: Replica) -> Decision:
        """The replica's tier terms as the regions they select now, best weight first."""
        region_tier = {name: t.tier for name, t in self.tiers.items()}
        by_weight: dict[int, list[str]] = {}
        for region in self.names:
            weight = replica.weight(region_tier.get(region))
            if weight > 0:
                by_weight.setdefault(weight, []).append(region)
        allowed = frozenset(r for r in self.names if replica.allows(region_tier.get(r)))
        return Decision(
            tuple(tuple(by_weight[w]) for w in sorted(by_weight, reverse=True)),
            allowed if replica.top is not None else None,
        )

    def schedule_pending(self, minute: int) -> None:
        for ordinal, replica in sorted(self.pending.items()):
            node = self.week.bind(self.decision(replica), self.bound())
            if node is None:
                continue
            del self.pending[ordinal]
            self.replicas[ordinal] = dataclasses.replace(
                replica, node=node, ready_at=minute + self.profile.catch_up_minutes
            )

    def deschedule(self, minute: int) -> None:
        week = self.week
        cluster = Cluster(
            tiers={name: self.labels.get(name) for name in self.node_regions},
            free_millis=self.free,
            schedulable=frozenset(self.node_regions) - week.model.cordoned,
            main=week.main,
            cpu_millis=week.pool.cpu_millis,
        )
        wanted = week.size
        for evicted in cycle(
            sorted(self.replicas.values(), key=lambda r: r.ordinal),
            cluster,
            self.profile,
            now=minute,
            wanted=wanted,
        ):
            del self.replicas[evicted.ordinal]
            self.tally.evictions += 1
            replacement = self.admit(evicted.ordinal, created=minute)
            self.pending[evicted.ordinal] = replacement
            self.schedule_pending(minute)
            moved = self.replicas.get(evicted.ordinal)
            before = self.labels.get(evicted.node)
            after = self.labels.get(moved.node) if moved is not None else None
            if before is None or after is None or after >= before:
                self.tally.futile_evictions += 1

    def bound(self) -> list[str]:
        return [replica.node for replica in self.replicas.values()]


def _tally(week: Week) -> Tally:
    return Tally(
        wanted_minutes=week.size * week.hours * 60, replica_days=week.size * week.hours / 24
    )


def run_week(
    week: Week,
    profile: Profile,
    policy: TierPolicy,
    variants: Mapping[str, tuple[Profile, TierPolicy]],
) -> dict[str, Tally]:
    """Every policy on one week of one pool, and following under each of ``variants``."""
    chosen = policies(week.model, week.traces, week.infos, week.pool)
    tallies = {
        "agnostic": placed_once(week, chosen["agnostic"]),
        "create-time": placed_once(week, chosen["pool/replicas"]),
        "following": Following(week, profile, policy).run(),
        "oracle": oracle(week),
        "ranked-hourly": ranked_hourly(week),
    }
    for name, (other_profile, other_policy) in variants.items():
        tallies[f"following/{name}"] = Following(week, other_profile, other_policy).run()
    return tallies


def total(tallies: Iterable[Tally]) -> Tally:
    """Several weeks' tallies summed."""
    items = list(tallies)
    summed = items[0]
    for tally in items[1:]:
        summed = summed.merged(tally)
    return summed
