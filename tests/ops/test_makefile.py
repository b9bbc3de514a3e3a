"""`make serve` and `make test` started at the same time in a fresh clone: the venv is
created and installed once, by one of them, and both go on. Python and pip are stand-ins
here (a shell script that logs when each step starts and ends and sleeps in between), so the
test runs in a second and needs no network; the Makefile is the real one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/bin/sh
# stands in for `python3 -m venv DIR`; writes a pip that logs and takes its time
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 64
echo "venv $$" >> "$INSTALL_LOG"
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
echo "pip-start $$" >> "$INSTALL_LOG"
sleep 0.5
echo "pip-end $$" >> "$INSTALL_LOG"
PIP
chmod +x "$3/bin/pip"
"""


@pytest.mark.skipif(shutil.which("flock") is None or shutil.which("make") is None, reason="needs make and flock")
def test_two_makes_at_once_install_the_venv_once(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "install.log"
    env = {"PATH": "/usr/bin:/bin", "INSTALL_LOG": str(log)}
    makes = [subprocess.Popen(["make", "-C", str(tmp_path), ".venv/.installed", f"PYTHON={fake}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [m.communicate(timeout=60)[0] for m in makes]
    assert [m.returncode for m in makes] == [0, 0], outputs
    steps = log.read_text().split()[::2]
    assert steps == ["venv", "pip-start", "pip-end", "pip-start", "pip-end"], log.read_text()
    assert (tmp_path / ".venv" / ".installed").exists()
    # And once installed, a later make installs nothing.
    again = subprocess.run(["make", "-C", str(tmp_path), ".venv/.installed", f"PYTHON={fake}"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and log.read_text().split()[::2] == steps
