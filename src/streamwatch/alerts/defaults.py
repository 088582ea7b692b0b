"""The built-in alert rules: what streamwatch alerts on when the config names no rule.

They lean on the core's own judgements (findings), whose thresholds are
calibrated on each reference profile and which need enough samples, so they
work out of the box without a threshold to tune. A rule in the config with the
same name replaces a built-in one; ``alerting: {default_rules: false}`` drops
them all. The documentation's rules reference (reference/rules.md) lists them.

>>> [rule.name for rule in DEFAULT_RULES][:3]
['feature-drift', 'multivariate-drift', 'embedding-drift']
>>> mine = RuleConfig(name="data-quality", kind="data_quality", when={"finding": "data_quality"}, channels=[])
>>> [r.name for r in with_defaults([mine])][:3]
['data-quality', 'feature-drift', 'multivariate-drift']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamwatch.config.rules import RuleConfig
from streamwatch.core.budget import DEFAULT_FOR

__all__ = ["DEFAULT_RULES", "with_defaults"]


def _rule(name: str, kind: str, when: dict[str, Any], for_: int = 1, **fields: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": name, "kind": kind, "when": when, "for": for_, **fields})


DEFAULT_RULES: tuple[RuleConfig, ...] = (
    # A feature or the score drifted past its threshold, two windows running. The thresholds are calibrated
    # on the reference for each window's size and set from the false-alert budget (core.budget).
    _rule("feature-drift", "drift", {"finding": "drift"}, for_=DEFAULT_FOR["drift"]),
    # The features' joint distribution moved (two features stopped moving together, a column shuffled against
    # the others) while each alone may look the same: the window's mean reconstruction error by the reference's
    # PCA over its threshold, resampled from the reference at the budget's drift rate, two windows running.
    _rule("multivariate-drift", "drift", {"metric": "multivariate_drift"}, for_=DEFAULT_FOR["drift"]),
    # An embedding's mean vector moved (a cluster of inputs moved): the distance between the window's mean and
    # the reference's over its threshold, simulated from the reference's covariance at the budget's drift rate,
    # two windows running. A change of spread alone shows in its projections' drift (feature-drift, on
    # "<name>#pc1"...). The cosine distance has its row and threshold too, for a rule of one's own.
    _rule("embedding-drift", "drift", {"metric": "embedding_euclidean"}, for_=DEFAULT_FOR["drift"]),
    # A producer sends vectors of another length than the reference's: they cannot be compared, and are counted.
    _rule("embedding-wrong-length", "data_quality", {"metric": "embedding_wrong_length", "op": ">", "threshold": 0}),
    # Half the judged features drifted at once: the model sees another population. Retrain.
    _rule("drifted-share", "drift", {"metric": "drifted_share", "op": ">="}, severity="critical", actions=["retrain"]),
    # Missing, mistyped, out-of-range or unseen values above the reference's rate, beyond chance.
    _rule("data-quality", "data_quality", {"finding": "data_quality"}, for_=DEFAULT_FOR["data_quality"]),
    # Performance over the performance view (the last 30 minutes of predictions, as their labels arrive)
    # significantly below the model's validation baseline (models[].baseline) minus 0.05.
    _rule(
        "auc-drop",
        "performance",
        {"metric": "roc_auc", "drop": 0.05},
        for_=DEFAULT_FOR["performance"],
        view="performance",
        actions=["retrain"],
    ),
    _rule(
        "accuracy-drop",
        "performance",
        {"metric": "accuracy", "drop": 0.05},
        for_=DEFAULT_FOR["performance"],
        view="performance",
    ),
    # Performance estimated from the predictions alone (CBPE: the score as calibrated on the reference's
    # labels), before any label arrives: over the performance view's spans (the shortest that shows it), the
    # top of the estimate's bounds under the reference's own estimate minus 0.05.
    _rule(
        "estimated-performance-drop",
        "performance",
        {"metric": "estimated_roc_auc", "drop": 0.05},
        for_=DEFAULT_FOR["performance"],
        view="performance",
        actions=["retrain"],
    ),
    # Labelled predictions whose realized accuracy left the bounds the estimate gave them: the estimate's
    # assumption broke (concept drift, or scores no longer calibrated for a slice), over the performance view.
    _rule(
        "estimate-diverged",
        "performance",
        {"metric": "estimate_error"},
        for_=DEFAULT_FOR["performance"],
        view="performance",
    ),
    # A slice whose selection rate (demographic parity), false positive or false negative rate (equalized
    # odds) is 5 points worse than the best slice's over the performance view, with intervals (at the
    # budget's confidence) that do not overlap. A minute holds too few labels per slice to see such a gap.
    *(
        _rule(
            name,
            "fairness",
            {"metric": metric, "parity": True, "threshold": 0.05},
            for_=DEFAULT_FOR["fairness"],
            view="performance",
        )
        for name, metric in (
            ("selection-rate-gap", "selection_rate"),
            ("slice-fpr-gap", "fpr"),
            ("slice-fnr-gap", "fnr"),
        )
    ),
    # The Google SRE workbook's multi-window burn-rate alerts: page fast burns, ticket slow ones. Each needs
    # evidence: bad requests in its short window, and history covering its long one (core.slo).
    _rule("slo-burn-page", "slo", {"finding": "slo", "finding_severity": "critical"}, severity="critical"),
    _rule("slo-burn-ticket", "slo", {"finding": "slo", "finding_severity": "warning"}),
    # A canary or shadow that disagrees with production, or is much slower.
    _rule("divergence-agreement", "divergence", {"metric": "agreement_rate", "op": "<", "threshold": 0.9}, for_=2),
    _rule("divergence-latency", "divergence", {"metric": "latency_p95_ratio", "threshold": 1.5}, for_=2),
    _rule("divergence-score", "divergence", {"metric": "score_abs_diff", "threshold": 0.1}, for_=2),
    # A river detector saw the error rate change (windows of at least 50 requests).
    _rule("change-detected", "change", {"finding": "change"}, severity="info"),
)


def with_defaults(rules: Sequence[RuleConfig], enabled: bool = True) -> list[RuleConfig]:
    """The configured rules, then the built-in ones they do not replace."""
    named = {rule.name for rule in rules}
    return list(rules) + [r for r in DEFAULT_RULES if enabled and r.name not in named]
