"""Stage 1, the data: the corpus read and split, tokens, placeholders for copied values, vocabularies,
augmentation, the encoder's retrieve-and-edit features, and pairs made from unlabelled Python for pretraining."""
