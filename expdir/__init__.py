"""The experiment directory: the contract between ``search`` (the writer) and ``reports``.

:mod:`expdir.contract` names its files and holds their records; :mod:`expdir.files` writes them
atomically. Neither imports torch, Ray or Optuna: a report needs only the directory.
"""

from tunecast.expdir import contract
from tunecast.expdir.contract import ContractError
from tunecast.expdir.files import atomic_dir, one_line, versions, write_json, write_text_atomic

__all__ = ["ContractError", "atomic_dir", "contract", "one_line", "versions", "write_json",
           "write_text_atomic"]
