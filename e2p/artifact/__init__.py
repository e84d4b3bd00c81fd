"""Stage 3, the artifact: the folder a training run writes and the app loads, built in steps (export)
and checked and loaded with its manifest (bundle)."""
