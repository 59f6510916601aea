"""Kept k-means centroids: a stage stores its fit and reuses it while it still fits the data.

Why a module: one rule for every fit a stage keeps between runs, so a kept fit means the same
thing everywhere. It is the rule the text centroids follow (jobs/cluster.py,
Cluster.stored_centroids, with the same table properties and settings), written once here
for balance's image centroids and followed by cluster's text centroids.

A stored fit is reused unless: `--refit` (kmeans.refit) or `--full-refresh`; the table
holds no fit, or one under another fit fingerprint (`realsyn.work_fingerprint`: the fit's
code, its settings and the vectors' own work fingerprint); or the current sample's mean
cosine to its nearest stored centroid fell by more than kmeans.refit_drift since the fit
(the fit's own mean cosine is the table property `realsyn.fit_mean_cosine`). While a fit is
kept, every stored row keeps its cluster, so an increment assigns only its new rows.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY
from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters

FIT_COSINE = "fit_mean_cosine"


def mean_fit(sample: np.ndarray, levels: CentroidLevels) -> float:
    """Mean cosine of the sample to its cluster's centroid: how well the centroids fit it."""
    if not len(sample):
        return 1.0
    scores, _ = nearest_clusters(sample, levels, 1)
    return float(scores[:, 0].mean())


def stored_fit(ctx, table: str, fingerprint: str, refit: bool, refit_drift: float, sample: np.ndarray,
               load: Callable[[], CentroidLevels], what: str) -> CentroidLevels | None:
    """The centroids stored in `table` (read by `load`) when the rule above keeps them; None:
    fit again. `what` names them in the run's console and metrics."""
    if (refit or ctx.full_refresh or not ctx.store_has(table)
            or ctx.table_property(table, WORK_FINGERPRINT_PROPERTY) != fingerprint):
        return None
    levels = load()
    if not levels.clusters:
        return None
    fitted = float(ctx.table_property(table, FIT_COSINE) or "nan")
    drift = fitted - mean_fit(sample, levels)
    ctx.tracker.metrics({what.replace(" ", "_") + "_drift": drift})
    stage = ctx.stage.name
    if not drift <= refit_drift:
        ctx.say(f"[{stage}] stored {what} drifted by {drift:.4f} (bound {refit_drift}): fitting again")
        return None
    ctx.say(f"[{stage}] {levels.clusters} stored {what} reused (drift {drift:.4f} <= {refit_drift})")
    return levels
