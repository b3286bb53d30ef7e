"""Serving cost of the at-risk prebunk rows: ALS top-k alone vs the co-engagement blend,
300k users x 30k rumors (synthetic, skewed), the 1,000 most exposed rumors eligible."""

import resource
import sys
import time

sys.path.insert(0, ".")
import numpy as np
import scipy.sparse as sp

from offline.models.train import AtRiskConfig, _most_exposed, _top_blended, _top_unexposed

rng = np.random.default_rng(0)
U, R, per = 300_000, 30_000, 10
rows = np.repeat(np.arange(U), per)
pop = rng.zipf(1.3, size=U * per) % R  # skewed rumor popularity
m = sp.csr_matrix((np.ones(U * per, np.float32), (rows, pop)), shape=(U, R))
m.sum_duplicates()
ufac = rng.normal(size=(U, 32)).astype(np.float32)
rfac = rng.normal(size=(R, 32)).astype(np.float32)
exposed = np.diff(m.tocsc().indptr)
eligible = _most_exposed(exposed, np.ones(R, bool), 1000)
print("nnz", m.nnz)
t = time.time()
a = _top_unexposed(ufac, rfac, m, eligible, 0.05)
print("als topk", round(time.time() - t, 1), len(a[0]))
t = time.time()
b = _top_blended(ufac, rfac, m, eligible, AtRiskConfig())
print("blend", round(time.time() - t, 1), len(b[0]))
print("maxrss MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
