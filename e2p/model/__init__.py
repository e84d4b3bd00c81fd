"""Stage 2, the model: the Transformer (transformer), its losses, training, decoding (greedy, beam,
sampling) under the syntax guard, and where each generated token came from (origins)."""
