"""Stage 5, the evaluation: EVAL.md's metrics, the report comparing systems on a split (report), and
latency and training-throughput benchmarks (benchmark)."""
