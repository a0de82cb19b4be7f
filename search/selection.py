"""The selection rule, once: which candidate a search forecasts with, decided on validation only.

Every candidate has a validation loss on the search's own block and, on a single series, at
earlier origins where it was retrained (:mod:`tunecast.search.backtest`). The experiment stores
what :func:`select` decided (``SelectionRecord``), not the rule.
"""

from __future__ import annotations

from tunecast.expdir.contract import (
    CHOICES,
    SELECTION_RULE,
    BestRecord,
    CombinedRecord,
    EnsembleRecord,
    SelectionRecord,
    finite_or_none,
)

Losses = dict[str, list[float | None]]


def select(val_loss: dict[str, float | None], earlier: Losses | None = None) -> SelectionRecord:
    """The candidate with the lowest score: its validation loss, or with ``earlier`` its mean over
    the search's own block and every earlier origin where every compared candidate has a loss.
    Beside an ensemble the best trial is not compared (its own-block loss is optimistic); the
    combination drops out when it lacks an origin all others have. Ties: the earlier in ``CHOICES``."""
    earlier = earlier or {}
    with_ensemble = finite_or_none(val_loss.get("ensemble")) is not None
    compared = tuple(k for k in CHOICES if not (k == "best" and with_ensemble))
    finite = {k: float(v) for k in compared if (v := finite_or_none(val_loss.get(k))) is not None}

    def has(k: str, i: int) -> bool:
        return i < len(earlier.get(k, [])) and finite_or_none(earlier[k][i]) is not None

    others = [k for k in finite if k != "combined"]
    n = max((len(earlier.get(k, [])) for k in others), default=0)
    if "combined" in finite and others and \
            any(all(has(k, i) for k in others) and not has("combined", i) for i in range(n)):
        del finite["combined"]
    depth = min((len(earlier.get(k, [])) for k in finite), default=0)
    common = [i for i in range(depth) if all(has(k, i) for k in finite)]
    score = {k: (v + sum(float(earlier[k][i] or 0.0) for i in common)) / (1 + len(common))
             for k, v in finite.items()}
    chosen = min(score, key=score.__getitem__) if score else "best"  # dicts keep CHOICES' order
    return SelectionRecord(chosen=chosen, val_loss={k: val_loss.get(k) for k in CHOICES}, rule=SELECTION_RULE,
                           earlier=earlier, compared=compared, score=score, origins=1 + len(common))


def candidates_losses(best: BestRecord, ensemble: EnsembleRecord | None, combined: CombinedRecord | None,
                      baselines: dict[str, float | None]) -> dict[str, float | None]:
    """Every candidate's validation loss on the search's own block (None: it does not exist)."""
    return {"best": best.val_loss, "ensemble": ensemble.val_loss if ensemble else None,
            "combined": combined.val_loss if combined else None, **baselines}
