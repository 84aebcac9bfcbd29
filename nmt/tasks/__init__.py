"""Tasks: what a kind of training data owns (how a data dir becomes batches, the criterion, validation)."""
