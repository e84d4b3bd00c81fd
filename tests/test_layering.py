"""The package's stages only look down: each imports only from the stages below it (and itself),
so there is no import circle and each folder's job reads from its name. And no module imports
another of e2p's inside a function, except where that keeps torch out of a command that does not
need it (the CLI's `--help`, `data` commands)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "e2p"
# Lowest first. Top-level helper modules that import nothing of e2p's form the base.
LAYERS = [
    {"errors", "constants", "syntax", "formatting", "retired", "collector"},
    {"data"},
    {"model"},
    {"sandbox"},
    {"answer"},
    {"evaluation"},
    {"artifact"},
    {"views"},
    {"cli", "commands", "__main__"},
]
# Function-level imports of e2p modules that keep torch (and spaCy) out of commands that do not need
# them: `e2p --help` and `e2p data ...` answer without importing the model.
LAZY_ALLOWED = {"cli.py", "commands.py"}


def _stage(module: str) -> str:
    """'e2p.answer.generator' -> 'answer'; 'e2p.errors' -> 'errors'."""
    return module.split(".")[1]


def _layer(stage: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if stage in names)


def _imports(path: Path):
    """(module imported, line, inside a function) for every import of an e2p module in `path`."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    tree = ast.parse(path.read_text(), str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(node) for f in functions for node in ast.walk(f) if node is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("e2p.") and name.count(".") >= 1:
                yield name, node.lineno, id(node) in inside


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_stage_imports_only_from_below():
    upward = []
    for path in _modules():
        own = _stage("e2p." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for module, line, _ in _imports(path):
            target = _stage(module)
            if target != own and _layer(target) > _layer(own):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module} ({target})")
    assert upward == []


def test_no_function_level_import_of_e2p_but_to_keep_torch_out_of_the_cli():
    lazy = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in _modules()
        for module, line, in_function in _imports(path)
        if in_function and path.name not in LAZY_ALLOWED
    ]
    assert lazy == []


def test_every_stage_is_in_a_layer():
    stages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    stages |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert stages <= set().union(*LAYERS), stages - set().union(*LAYERS)
