"""Kept for tools that import the old path: the module is e2p.answer.sandbox."""

from .answer.sandbox import RunResult, SandboxStatus, run_code, run_many, sandbox_status

__all__ = ["RunResult", "SandboxStatus", "run_code", "run_many", "sandbox_status"]
