"""Stage 4, the answer: the Generator turns a prompt into code, pooling the model's candidates with
retrieved and edited programs, running them in the sandbox and choosing one (ranking, answer_policy)."""
