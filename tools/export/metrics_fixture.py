"""Writes tests/GpuAnomaly.Tests/Metrics/sklearn_roc_fixture.json: random (scores, labels) cases with many
ties and sklearn's roc_auc_score and FPR at TPR >= 0.95 (first point of roc_curve with
drop_intermediate=False reaching it), as an oracle for src/Models/Metrics/Roc.cs.

Run with a Python that has numpy and scikit-learn (e.g. Debian's python3-sklearn):
    /usr/bin/python3 tools/export/metrics_fixture.py
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, roc_curve

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests/GpuAnomaly.Tests/Metrics/sklearn_roc_fixture.json"


def main() -> None:
    rng = np.random.default_rng(20261122)
    cases = []
    for k in range(24):
        n = int(rng.integers(2, 400))
        if k % 3 == 0:  # continuous scores: few ties
            scores = rng.normal(size=n).astype(np.float32)
        else:  # a handful of levels: many ties across classes
            scores = (rng.integers(0, int(rng.integers(1, 10)), size=n) * 0.1 - 0.3).astype(np.float32)
        labels = rng.random(n) < rng.uniform(0.05, 0.7)
        labels[0], labels[1] = True, False
        scores = scores + labels.astype(np.float32) * np.float32(rng.uniform(0, 0.5))  # some signal
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        fpr95 = float(fpr[np.argmax(tpr >= 0.95)])
        cases.append({
            # float32 values written as the shortest decimal that round-trips them
            "scores": [float(str(np.float32(s))) for s in scores],
            "labels": [int(v) for v in labels],
            "auroc": float(roc_auc_score(labels, scores)),
            "fpr95": fpr95,
        })
    OUT.write_text(json.dumps({"sklearn": sklearn.__version__, "cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
