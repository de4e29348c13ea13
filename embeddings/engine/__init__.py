"""The machine-learning engine: the backbone, encoding, triplets, training, the compatibility
index and its refreshes, evaluation. No Django: it takes arrays, paths and callbacks, and the
glue around it (embeddings/training.py, training_runs.py, version_refresh.py, tasks.py) gathers
rows, calls it and records what it made. tests/test_architecture.py keeps it so.

Its public face, by module (imported from there: importing this package loads nothing, so a
web process takes numpy and FAISS for serving and never torch):
- fit.fit_version(catalog, TrainingOptions) -> FittedVersion: a model version's parts;
  fit.fit_space for studies of the training alone.
- index.CompatibilityIndex: build, save, load; candidates() / outfit_candidates() /
  vector_candidates() -> candidates.Candidates, diverse(), score(), pair_scores().
- scorers.Scorer, TypeAwareScorer, SCORERS: the served score.
- refresh.refreshed(index, upserts, removals): new and changed products without retraining.
- photo.PhotoEncoder: a shopper's photo into a version's space (torch).
- evaluate: the Polyvore task formats and their metrics; pretrain, backbone: the backbone."""
