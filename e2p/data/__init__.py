"""Stage 1, the data: the corpus read and split, tokens, placeholders for copied values, vocabularies,
the encoder's retrieve-and-edit features, and pairs made from unlabelled Python for pretraining."""
