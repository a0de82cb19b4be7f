"""``tunecast search`` exit codes: 0 completed, 1 failed (no trial finished), 130 interrupted."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tunecast.search.cli_search import EXIT_CODES, finish
from tunecast.search.run import SearchOutcome


@pytest.mark.parametrize(("status", "code"), [("completed", 0), ("failed", 1), ("interrupted", 130)])
def test_exit_code_by_status(capsys, status, code):
    trials = pd.DataFrame({"status": ["failed"]})
    outcome = SearchOutcome(path=Path("runs/x"), status=status, trials=trials, best=None, ensemble=None)
    assert finish(outcome, report=False) == code == EXIT_CODES[status]
    out = capsys.readouterr().out
    assert f"search {status}" in out and ("resume with" in out) == (status == "interrupted")
