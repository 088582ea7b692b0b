"""The report's section per embedding: its mean's Euclidean and cosine distances from the reference's against their
thresholds, and the windows where a distance crossed its threshold or a projection drifted, read back from a real
store (chdb)."""

from __future__ import annotations

import re

from streamwatch.adapters.clickhouse import Store
from streamwatch.core.records import MetricRow
from streamwatch.report.html import render_report, report_data
from tests.metric_rows import MINUTE, T0, row

HOSTILE = "<script>alert('x')</script>&\"vec\""


def report(store: Store, rows: list[MetricRow]) -> str:
    """The report of model ``m`` over ``rows``."""
    store.insert_metrics(rows, version=1)
    return render_report(report_data(store, "m", T0, T0 + 10 * MINUTE))


def section(html: str, name: str) -> str:
    """The section of embedding ``name`` (escaped as the page shows it), up to the next section."""
    heading = f"<h2>Embedding drift: {name}</h2>"
    assert html.count(heading) == 1
    return html.split(heading, 1)[1].split("<h2>", 1)[0]


# What any model's report has: requests, and an ordinary feature's drift.
ORDINARY = [row("requests", 100, m) for m in range(3)] + [
    row("wasserstein", 0.1, m, feature="debt_ratio", threshold=0.2) for m in range(3)
]


def test_each_embedding_has_its_distances_charted_and_its_crossing_windows_tabled(store: Store) -> None:
    rows = [
        *ORDINARY,
        # "text": its mean moves in minute 1 (Euclidean over its threshold, cosine at it), back in minute 2
        row("embedding_euclidean", 0.4, 0, feature="text", threshold=1.0),
        row("embedding_euclidean", 1.5, 1, feature="text", threshold=1.2),
        row("embedding_euclidean", 0.5, 2, feature="text", threshold=1.2),
        row("embedding_cosine", 0.01, 0, feature="text", threshold=0.05),
        row("embedding_cosine", 0.05, 1, feature="text", threshold=0.05),
        row("embedding_cosine", 0.02, 2, feature="text", threshold=0.05),
        row("embedding_wrong_length", 3, 2, feature="text"),
        # its projections: pc2 drifts in minute 2 only (a change of spread the mean's distance misses)
        *(row("wasserstein", 0.1, m, feature="text#pc1", threshold=0.3) for m in range(3)),
        row("wasserstein", 0.1, 0, feature="text#pc2", threshold=0.3),
        row("wasserstein", 0.2, 1, feature="text#pc2", threshold=0.3),
        row("wasserstein", 0.45, 2, feature="text#pc2", threshold=0.3),
        row("psi", 9.0, 0, feature="text#pc1", threshold=0.2),  # not what decides a projection's drift
        # a slice's row and another model's: neither is this model's overall embedding
        row("embedding_euclidean", 9.0, 0, feature="text", threshold=1.0, segment=(("gender", "F"),)),
        row("embedding_euclidean", 9.0, 0, feature="text", threshold=1.0, model="other"),
        # a second embedding, its name a producer's, that never crosses
        row("embedding_euclidean", 0.1, 0, feature=HOSTILE, threshold=1.0),
        row("embedding_cosine", 0.001, 0, feature=HOSTILE, threshold=0.05),
    ]
    html = report(store, rows)
    part = section(html, "text")
    assert "<h3>1.0 (production)</h3>" in part
    assert "text: Euclidean distance of the mean from the reference&#x27;s, 1.0 production" in part
    assert "text: cosine distance of the mean from the reference&#x27;s, 1.0 production" in part
    assert part.count("<svg") == 2 and part.count("<polyline") == 4  # each distance and its threshold
    cells = re.findall(r"<tr><td>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td>([^<]*)</td></tr>", part)
    assert cells == [  # the windows where something crossed, minute 0 not among them
        ("2026-09-21 14:14 UTC", "1.5000 / 1.2000", "0.0500 / 0.0500", ""),
        ("2026-09-21 14:15 UTC", "0.5000 / 1.2000", "0.0200 / 0.0500", "text#pc2"),
    ]
    assert part.count("class='over'") == 2  # the Euclidean and cosine distances of minute 1
    assert "Vectors refused for their length: 3." in part and "9.0000" not in part
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;vec&quot;"
    other = section(html, escaped)
    assert "No distance crossed its threshold and no projection drifted." in other and "<table" not in other
    assert "<script" not in html.lower()
    assert html.index("<h2>Drift per feature</h2>") < html.index("<h2>Embedding drift: ")


def test_a_report_without_embedding_rows_has_no_embedding_section(store: Store) -> None:
    html = report(store, [*ORDINARY, row("wasserstein", 0.5, 1, feature="notes#pcx", threshold=0.2)])
    assert "<h2>Drift per feature</h2>" in html and "debt_ratio" in html
    assert "Embedding drift" not in html
