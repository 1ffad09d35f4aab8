# The scikit-learn peer of bench/poisoning.js: MinCovDet on an .npy matrix, timed, with the
# ROC AUC of its squared robust distances against an .npy of 0/1 truth. Prints one JSON line.
# Run with Debian's python3 (scikit-learn 1.2); exits 3 with {"skipped": …} when sklearn is missing.
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import sklearn
    from sklearn.covariance import MinCovDet
    from sklearn.metrics import roc_auc_score
except ImportError as e:
    print(json.dumps({"skipped": f"scikit-learn not importable: {e}"}))
    sys.exit(3)

p = argparse.ArgumentParser()
p.add_argument("--x", required=True)
p.add_argument("--truth", required=True)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
X = np.load(a.x)
y = np.load(a.truth)
t0 = time.perf_counter()
m = MinCovDet(random_state=a.seed).fit(X)
seconds = time.perf_counter() - t0
print(json.dumps({
    "seconds": seconds,
    "auc": float(roc_auc_score(y, m.dist_)),
    "sklearn": sklearn.__version__,
    "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
}))
