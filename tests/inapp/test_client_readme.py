"""The README's in-app section states the module's size raw and gzipped: it must stay true
(within 2 KB) as the module changes."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_states_the_modules_size():
    module = (ROOT / "orchestrator/inapp/client/orchestrator-inbox.js").read_bytes()
    found = re.search(r"about (\d+) KB raw,\s+(\d+) KB gzipped", (ROOT / "README.md").read_text())
    assert found, "the README's in-app section names the module's size"
    raw_kb, gzip_kb = int(found[1]), int(found[2])
    assert abs(raw_kb - len(module) / 1024) <= 2, (raw_kb, len(module) / 1024)
    assert abs(gzip_kb - len(gzip.compress(module, 9)) / 1024) <= 2, (gzip_kb, len(gzip.compress(module, 9)) / 1024)
