"""Tweet stance classification: its data and labels, tweet cleaning, metrics, loss, the TF-IDF baseline."""
