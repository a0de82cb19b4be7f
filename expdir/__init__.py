"""The experiment directory: the contract between ``search`` (the writer) and ``reports``.

:mod:`expdir.contract` names every file, column, status and metric and holds the typed records
of the JSON files; :mod:`expdir.files` writes them atomically. Neither imports torch, Ray or
Optuna, so a report can be made from a directory copied off a cluster.
"""

from expdir import contract
from expdir.contract import ContractError
from expdir.files import atomic_dir, one_line, versions, write_json, write_text_atomic

__all__ = ["ContractError", "atomic_dir", "contract", "one_line", "versions", "write_json",
           "write_text_atomic"]
