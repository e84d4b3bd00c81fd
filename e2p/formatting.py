"""Black formatting of generated code, for the generator (`GenerationResult.formatted`).

Never raises on odd code: the model can emit anything. The app's HTML of code (diff and
confidence shading) is in `e2p.views.code_html`.
"""

from __future__ import annotations

import black

LINE_LENGTH = 88


def format_code(code: str) -> str:
    """Black-formatted code when it parses, else the code unchanged."""
    try:
        return black.format_str(code, mode=black.Mode(line_length=LINE_LENGTH))
    except Exception:  # black raises InvalidInput, TokenError, ... on code it cannot parse
        return code
