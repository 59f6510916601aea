"""Input corpora: the sample and the real documentation corpus."""
