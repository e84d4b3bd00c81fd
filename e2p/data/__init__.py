"""Stage 1, the data: the corpus read and split, tokens, placeholders for copied values, vocabularies,
and the encoder's retrieve-and-edit features over a TF-IDF memory of the train split."""
