"""Stage 2, the model: the Transformer (transformer), its losses, training and the pretraining pairs
made from unlabelled Python (pretraining), decoding (greedy, beam, sampling) under the syntax guard,
where each generated token came from (origins), and the learned ranker (ranker)."""
