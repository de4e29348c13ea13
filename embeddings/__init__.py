"""The machine-learning engine (backbone, encoding, triplets, training, indexes, evaluation: no
Django imports) and its Django glue (model versions, training runs, tasks, admin)."""
