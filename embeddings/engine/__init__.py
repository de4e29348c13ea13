"""The machine-learning engine: the backbone, encoding, triplets, training, the compatibility
index and its refreshes, evaluation. No Django: it takes arrays, paths and callbacks, and the
glue around it (embeddings/training.py, training_runs.py, version_refresh.py, tasks.py) gathers
rows, calls it and records what it made. tests/test_architecture.py keeps it so."""
