"""Readers that turn each QA dataset's official files (and hub copies) into flat SQuAD 2.0 records.

One module per dataset; the steps they share live in `common`. `qa_adapters` registers them as named datasets.
"""
