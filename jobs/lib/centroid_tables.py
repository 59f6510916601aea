"""Reading retrieval's stored centroids (gold.text_centroids and its coarse groups) back into
the broadcast form: the cluster stage reuses them, the retrieve stage searches them."""
from __future__ import annotations

import numpy as np

from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.vector_codec import from_bytes


def read_levels(read, dim: int) -> tuple[CentroidLevels, set[str]]:
    """The stored centroids (both levels) and the models they were fitted on: K + sqrt(K)
    rows, K at most the fit sample's rows (fit_levels clips it), and the same centroids every
    task receives as a broadcast."""
    fine = read("gold.text_centroids").orderBy("cluster_id").select("centroid", "coarse_id", "model").collect()
    coarse = read("gold.text_coarse_centroids").orderBy("coarse_id").select("centroid").collect()
    levels = CentroidLevels.from_arrays(from_bytes([r["centroid"] for r in fine], dim),
                                        from_bytes([r["centroid"] for r in coarse], dim),
                                        np.array([r["coarse_id"] for r in fine], np.int32))
    return levels, {r["model"] for r in fine}
