"""Which test examples changed their runs / exec-match status against the artifact's own samples?

Re-generates the shipped default answer for every test prompt, runs it (and the references) in
the sandbox exactly as EVAL.md says, and lists each example whose `runs` or `exec_match` differs
from what `artifacts/samples.json` recorded, with the end of the program's stderr as the reason.

    python benchmarks/run_status_changes.py [--artifacts artifacts] [--data PATH]
"""

from __future__ import annotations

import argparse
import json

from e2p.answer.generator import Generator
from e2p.constants import CORPUS_PATH
from e2p.data.corpus import load_corpus
from e2p.evaluation import metrics
from e2p.sandbox.runner import run_code


def changes(artifacts: str, data: str) -> dict:
    samples = json.load(open(f"{artifacts}/samples.json"))["samples"]
    examples = load_corpus(data).split("test")
    if [s["prompt"] for s in samples] != [ex.prompt for ex in examples]:
        raise SystemExit("samples.json does not hold this corpus's test prompts in order")
    generator = Generator(artifacts)
    refs = [ex.code for ex in examples]
    profiles = metrics.profile_references(refs)
    codes = [generator.generate(ex.prompt, attention=False).code for ex in examples]
    report = metrics.evaluate(codes, refs, profiles)
    changed = []
    for i, (sample, now) in enumerate(zip(samples, report.per_example)):
        before = sample["metrics"]["model"]
        diff = {k: (before.get(k), now[k]) for k in ("runs", "exec_match") if before.get(k) != now[k]}
        if not diff:
            continue
        run = run_code(codes[i]) if metrics.parses(codes[i]) else None
        reason = (
            "does not parse"
            if run is None
            else "timed out" if run.timed_out else (run.stderr.strip().splitlines() or ["exit 0"])[-1][:160]
        )
        changed.append(
            {
                "index": i,
                "prompt": sample["prompt"],
                "changed": diff,
                "same_code": codes[i] == sample["default"],
                "reference_runs": profiles[i].runs,
                "reason": reason,
            }
        )
    return {"summary": report.to_dict(), "changed": changed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", default="artifacts")
    p.add_argument("--data", default=CORPUS_PATH)
    args = p.parse_args()
    print(json.dumps(changes(args.artifacts, args.data), indent=1))


if __name__ == "__main__":
    main()
