"""The compatibility model: the machine-learning engine in engine/ (backbone, encoding, triplets,
training, indexes, evaluation: no Django) and, beside it, its Django glue (model versions,
training runs, refreshes, tasks, admin)."""
