"""The learnable world: a generated corpus whose ground truth is known, and the measurements against it. Test and benchmark code; no stage imports it."""
