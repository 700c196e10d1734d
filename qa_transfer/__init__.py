"""The helpers of the qa-transfer scripts (run_qa.py, run_classification.py, cross_eval.py, fine_tune_all.py,
convert_qa.py): QA data and its sources, windows and the QA Trainer, scores and reports, classification data and
metrics, and the plumbing the scripts share (arguments, logging, precision, atomic result files, plots)."""
