"""The experiment's tables read as docs/experiment-dir.md says to (ids are text), and a copy of
an experiment with another choice.

Ray's trial ids are 8 hex digits. One made of digits only ("40151467", about 2% of ids) or
shaped like a number ("12e45678") comes back from a bare ``pd.read_csv`` as an int or a float
when no other id in the column has a letter, and then equals no id read elsewhere (CI once
failed ``test_panel_resume`` that way)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from tunecast.expdir import contract as c

ID_COLUMNS = {"trial_id": str, "unique_id": str}


def read_table(path: Path | str | Any, **options: Any) -> pd.DataFrame:
    """``pd.read_csv`` with ``trial_id`` and ``unique_id`` as text (a column may be absent)."""
    return pd.read_csv(path, dtype=ID_COLUMNS, **options)


def choosing(exp: Path, folder: Path, chosen: str) -> Path:
    """A copy of the experiment at ``folder`` whose selection is ``chosen`` (a search's choice
    depends on its few short trials; a test of each kind of forecast uses this, whatever it was)."""
    shutil.copytree(exp, folder)
    run = json.loads((folder / c.RUN_FILE).read_text())
    run["selection"]["chosen"] = chosen
    (folder / c.RUN_FILE).write_text(json.dumps(run))
    return folder
