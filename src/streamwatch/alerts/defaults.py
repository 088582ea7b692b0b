"""The built-in alert rules: what streamwatch alerts on when the config names no rule.

They lean on the core's own judgements (findings), whose thresholds are
calibrated on each reference profile and which need enough samples, so they
work out of the box without a threshold to tune. A rule in the config with the
same name replaces a built-in one; ``alerting: {default_rules: false}`` drops
them all. The README lists them.

>>> [rule.name for rule in DEFAULT_RULES][:3]
['feature-drift', 'drifted-share', 'data-quality']
>>> mine = RuleConfig(name="data-quality", kind="data_quality", when={"finding": "data_quality"}, channels=[])
>>> [r.name for r in with_defaults([mine])][:3]
['data-quality', 'feature-drift', 'drifted-share']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamwatch.config.rules import RuleConfig

__all__ = ["DEFAULT_RULES", "with_defaults"]


def _rule(name: str, kind: str, when: dict[str, Any], for_: int = 1, **fields: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": name, "kind": kind, "when": when, "for": for_, **fields})


DEFAULT_RULES: tuple[RuleConfig, ...] = (
    # A feature or the score drifted past its calibrated threshold, two windows running.
    _rule("feature-drift", "drift", {"finding": "drift"}, for_=2),
    # Half the judged features drifted at once: the model sees another population. Retrain.
    _rule("drifted-share", "drift", {"metric": "drifted_share", "op": ">="}, severity="critical", actions=["retrain"]),
    # Missing, mistyped, out-of-range or unseen values above the reference's rate.
    _rule("data-quality", "data_quality", {"finding": "data_quality"}, for_=2),
    # Performance below the model's validation baseline (models[].baseline) by more than 0.05.
    _rule("auc-drop", "performance", {"metric": "roc_auc", "drop": 0.05}, for_=3, actions=["retrain"]),
    _rule("accuracy-drop", "performance", {"metric": "accuracy", "drop": 0.05}, for_=3),
    # A slice whose selection rate (demographic parity), false positive or false negative rate (equalized
    # odds) is 0.1 worse than the best slice's, with confidence intervals that do not overlap.
    _rule("selection-rate-gap", "fairness", {"metric": "selection_rate", "parity": True, "threshold": 0.1}, for_=2),
    _rule("slice-fpr-gap", "fairness", {"metric": "fpr", "parity": True, "threshold": 0.1}, for_=2),
    _rule("slice-fnr-gap", "fairness", {"metric": "fnr", "parity": True, "threshold": 0.1}, for_=2),
    # The Google SRE workbook's multi-window burn-rate alerts: page fast burns, ticket slow ones.
    _rule("slo-burn-page", "slo", {"finding": "slo", "finding_severity": "critical"}, severity="critical"),
    _rule("slo-burn-ticket", "slo", {"finding": "slo", "finding_severity": "warning"}),
    # A canary or shadow that disagrees with production, or is much slower.
    _rule("divergence-agreement", "divergence", {"metric": "agreement_rate", "op": "<", "threshold": 0.9}, for_=2),
    _rule("divergence-latency", "divergence", {"metric": "latency_p95_ratio", "threshold": 1.5}, for_=2),
    _rule("divergence-score", "divergence", {"metric": "score_abs_diff", "threshold": 0.1}, for_=2),
    # A river detector saw the error rate or a feature's drift statistic change.
    _rule("change-detected", "change", {"finding": "change"}, severity="info"),
)


def with_defaults(rules: Sequence[RuleConfig], enabled: bool = True) -> list[RuleConfig]:
    """The configured rules, then the built-in ones they do not replace."""
    named = {rule.name for rule in rules}
    return list(rules) + [r for r in DEFAULT_RULES if enabled and r.name not in named]
