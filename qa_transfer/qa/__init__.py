"""The QA model: records, windows, the QA Trainer, scores and the squad_v2 metric, run records."""
