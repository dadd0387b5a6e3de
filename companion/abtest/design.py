"""Design before data: sample size, duration and the pre-registration record.

:func:`sample_size` turns a baseline rate, a minimum detectable effect (MDE), alpha and power
into customers per arm with statsmodels (Cohen's ``h`` from ``proportion_effectsize`` and
``NormalIndPower``: 10% -> 9% churn at alpha 0.05 and power 0.8 needs 13,488 per arm).

:class:`PreRegistration` freezes what is decided before any outcome is seen: the hypothesis,
the unit of randomisation, the population analysed, the primary metric with its baseline and
MDE, alpha, power, the arms and their split, the guardrails with their limits, the segments
and the number of looks. :func:`register` writes it as JSON (atomically) with a SHA-256 of its
content; :func:`load_registration` reads it back and refuses a record that is missing or was
changed after it was written (:class:`~companion.errors.LineageError`). The analysis starts
from the loaded record, never from values typed again after the data came in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.core.checks import (
    check_choice,
    check_identifier,
    check_int,
    check_number,
    check_path,
    check_text,
)
from companion.core.files import atomic_write_text
from companion.deployment.predlog import check_weights
from companion.deployment.router import ARMS
from companion.errors import InvalidParameterError, LineageError

__all__ = [
    "GUARDRAILS",
    "POPULATIONS",
    "PreRegistration",
    "duration_days",
    "load_registration",
    "register",
    "sample_size",
]

logger = logging.getLogger(__name__)

POPULATIONS = ("arm", "triggered")
"""Who the primary metric is computed over: every customer of each arm, or only the customers
whose offer decision differs between the two models (known in both arms, since both models
score every customer)."""

GUARDRAILS = ("offer_cost_per_customer", "latency_p99_ms")
"""Guardrails the analysis knows: the challenger's extra offer cost per customer of its arm
(in the fee's currency) and its serving latency's 99th percentile (ms, from the prediction log)."""

_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"


def _check_alpha_power(alpha: Any, power: Any) -> tuple[float, float]:
    alpha = check_number("alpha", alpha)
    if not 0.0 < alpha < 1.0:
        raise InvalidParameterError(f"alpha must be in (0, 1), got {alpha!r}")
    power = check_number("power", power)
    if not 0.0 < power < 1.0:
        raise InvalidParameterError(f"power must be in (0, 1), got {power!r}")
    return alpha, power


def _check_rates(baseline: Any, mde: Any, relative: bool) -> tuple[float, float]:
    baseline = check_number("baseline", baseline)
    if not 0.0 < baseline < 1.0:
        raise InvalidParameterError(f"baseline must be a rate in (0, 1), got {baseline!r}")
    mde = check_number("mde", mde, positive=True)
    target = baseline * (1.0 - mde) if relative else baseline - mde
    if not 0.0 < target < 1.0:
        kind = "relative (a share of the baseline)" if relative else "absolute"
        raise InvalidParameterError(
            f"mde {mde!r} ({kind}) takes the baseline {baseline} to {target:.4g}, outside (0, 1)"
        )
    return baseline, target


def sample_size(
    baseline: float, mde: float, *, relative: bool = True, alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Customers per arm to detect a fall of ``mde`` from ``baseline``, two-sided.

    Args:
        baseline: the control's rate (e.g. 30-day churn 0.10).
        mde: the minimum detectable effect, > 0: a share of the baseline (``relative``) or
            an absolute difference in rate.
        alpha: the test's significance level, in (0, 1).
        power: the probability of detecting ``mde``, in (0, 1).

    Example:
        >>> sample_size(0.10, 0.01, relative=False)
        13488
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    alpha, power = _check_alpha_power(alpha, power)
    baseline, target = _check_rates(baseline, mde, relative)
    effect = abs(float(proportion_effectsize(baseline, target)))
    n = NormalIndPower().solve_power(effect, alpha=alpha, power=power, ratio=1.0)
    return int(math.ceil(float(n)))


def duration_days(n_per_arm: int, *, arms: int = 2, eligible_per_day: float,
                  outcome_days: int = 30) -> int:
    """Days until the last customer's outcome is known: enrolment, then the outcome window."""
    check_int("n_per_arm", n_per_arm, minimum=1)
    check_int("arms", arms, minimum=2)
    eligible = check_number("eligible_per_day", eligible_per_day, positive=True)
    check_int("outcome_days", outcome_days, minimum=0)
    return int(math.ceil(n_per_arm * arms / eligible)) + outcome_days


@dataclass(frozen=True)
class PreRegistration:
    """What an experiment decides before any outcome is seen (see the module docstring).

    Attributes:
        name: the experiment's id (lowercase letters, digits, ``.-_``); also the router's salt.
        hypothesis: one sentence, the claim to be tested.
        unit: the unit of randomisation (``"customer"``).
        population: ``"arm"`` or ``"triggered"`` (:data:`POPULATIONS`).
        primary_metric: the metric of the decision (``"churned_30d"``, lower is better).
        baseline: the champion's expected rate on the population.
        mde: the minimum detectable effect, relative to the baseline.
        alpha: the significance level of the two-sided test of the primary metric.
        power: the test's probability of detecting ``mde``.
        weights: the split, arm -> share, over ``champion`` and ``challenger``.
        guardrails: guardrail -> the largest acceptable value (:data:`GUARDRAILS`).
        segments: the column whose values are analysed as segments (Holm-corrected).
        looks: interim looks of the group-sequential test (1: a fixed-horizon test).
        n_per_arm: customers per arm, from :func:`sample_size` when not given.
    """

    name: str
    hypothesis: str
    baseline: float
    mde: float
    alpha: float = 0.05
    power: float = 0.8
    unit: str = "customer"
    population: str = "arm"
    primary_metric: str = "churned_30d"
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"champion": 0.5, "challenger": 0.5})
    guardrails: Mapping[str, float] = field(default_factory=dict)
    segments: str = "plan"
    looks: int = 1
    n_per_arm: int = 0

    def __post_init__(self) -> None:
        check_identifier("name", self.name, _NAME, "lowercase letters, digits, '.', '-', '_'")
        check_text("hypothesis", self.hypothesis)
        check_text("unit", self.unit)
        check_choice("population", self.population, POPULATIONS)
        check_text("primary_metric", self.primary_metric)
        check_text("segments", self.segments)
        _check_alpha_power(self.alpha, self.power)
        _check_rates(self.baseline, self.mde, True)
        shares = check_weights(self.weights)
        for arm in shares:
            check_choice("arm", arm, ARMS)
        if set(shares) != set(ARMS) or min(shares.values()) <= 0:
            raise InvalidParameterError(
                f"weights must give both arms {list(ARMS)} a positive share, got {self.weights!r}"
            )
        if not isinstance(self.guardrails, Mapping):
            raise InvalidParameterError(
                f"guardrails must map a guardrail to its limit, got {self.guardrails!r}")
        limits = {check_choice("guardrail", g, GUARDRAILS): check_number(f"limit of {g}", v)
                  for g, v in self.guardrails.items()}
        check_int("looks", self.looks, minimum=1, maximum=100)
        n = check_int("n_per_arm", self.n_per_arm, minimum=0)
        if n == 0:
            n = sample_size(self.baseline, self.mde, alpha=self.alpha, power=self.power)
        object.__setattr__(self, "weights", {a: round(shares[a], 12) for a in ARMS})
        object.__setattr__(self, "guardrails", dict(sorted(limits.items())))
        object.__setattr__(self, "n_per_arm", n)
        for name in ("baseline", "mde", "alpha", "power"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def target(self) -> float:
        """The challenger's rate the test is powered to detect: ``baseline * (1 - mde)``."""
        return self.baseline * (1.0 - self.mde)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        values = dataclasses.asdict(self)
        values["weights"] = dict(self.weights)
        values["guardrails"] = dict(self.guardrails)
        return values

    def digest(self) -> str:
        """SHA-256 of the record's canonical JSON (sorted keys, no spaces)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def register(registration: PreRegistration, directory: str | Path) -> Path:
    """Write ``<directory>/<name>.preregistration.json`` (atomic) with the record's digest.

    A record already written for this name is never replaced: a design changed after the
    fact is a new experiment (a new name), so an existing file with another content raises
    :class:`LineageError`; the same content again is accepted (idempotent).
    """
    if not isinstance(registration, PreRegistration):
        raise InvalidParameterError(
            f"registration must be a PreRegistration, got {type(registration).__name__}")
    folder = check_path("directory", directory)
    path = folder / f"{registration.name}.preregistration.json"
    text = json.dumps({"record": registration.to_dict(), "sha256": registration.digest()},
                      indent=2, sort_keys=True) + "\n"
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return path
        raise LineageError(
            f"{path.name} already holds another design for experiment {registration.name!r}; "
            "a pre-registration is written once: give a changed design a new name")
    atomic_write_text(path, text)
    logger.info("pre-registered %s (%s)", registration.name, registration.digest()[:12])
    return path


def load_registration(path: str | Path) -> PreRegistration:
    """Read a record written by :func:`register`; refuse it if missing or changed since."""
    path = check_path("path", path)
    if not path.is_file():
        raise LineageError(
            f"no pre-registration at {path.name}: an experiment is analysed only against the "
            "design written before its data (register() it first)")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        record, digest = stored["record"], stored["sha256"]
        registration = PreRegistration(**record)
    except (ValueError, KeyError, TypeError) as error:
        raise LineageError(f"{path.name} is not a pre-registration record: {error}") from error
    if registration.digest() != digest or registration.to_dict() != record:
        raise LineageError(
            f"{path.name} was changed after it was registered (its content no longer matches "
            f"its SHA-256 {str(digest)[:12]}...); the analysis refuses an edited design")
    return registration
