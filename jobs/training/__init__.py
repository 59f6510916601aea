"""Model training: the world's teacher CLIP and generators, the student, zero-shot evaluation. No stage imports it."""
