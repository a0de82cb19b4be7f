"""The Ray Tune ``Tuner`` of a plan: OptunaSearch (seeded multivariate TPE, its study in the
experiment directory), ASHA or FIFO, best-only checkpoints, the data in Ray's object store
once, and the console: tunecast's progress display, or Ray's own tables with ``--verbose``."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from tunecast.expdir.contract import MODE, SEARCH_METRIC
from tunecast.search.optuna_space import distribution
from tunecast.search.plan import SearchPlan
from tunecast.search.progress import ProgressDisplay, quiet_libraries
from tunecast.search.space import starting_points
from tunecast.search.storage import storage_error
from tunecast.search.study import enqueue_starts, seed_study, study_file, study_storage
from tunecast.search.trainable import EPOCHS


class EpochOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch with the study's intermediate values per epoch (step = the epoch, not
    Tune's report count, coalesced epochs included), so optuna-dashboard draws the real curves.
    A retried trial's repeated epochs keep their first value, without Optuna's warning."""

    journal = ""  # the study's journal file: each saved state records its length (storage.rewind_journal)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            for row in [*json.loads(result.get(EPOCHS) or "[]"), result]:
                super().on_trial_result(trial_id, {**result, SEARCH_METRIC: row[SEARCH_METRIC],
                                                   "training_iteration": int(row["epoch"])})

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tune hands a trial's last report to this alone: its epochs too are the curve's."""
        if result and SEARCH_METRIC in result and "epoch" in result:
            self.on_trial_result(trial_id, result)
        super().on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """Tune's checkpoint, with the journal's length now (only the searcher writes it meanwhile)."""
        try:
            self.journal_bytes: int | None = os.path.getsize(self.journal)
        except OSError:  # no journal, or the storage failed: nothing to rewind to
            self.journal_bytes = None
        super().save(checkpoint_path)


def console(plan: SearchPlan) -> tuple[int, list[tune.Callback]]:
    """Ray Tune's verbosity and callbacks: 0 (``--quiet``) silent, 1 (the default) tunecast's
    progress display, 2 (``--verbose``) Ray Tune's own tables."""
    verbose = plan.config.verbose
    quiet_libraries(verbose)
    if verbose >= 2:
        return 1, []
    # Ray's new output engine prints its table even at verbose=0, the legacy one does not (driver only)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    if verbose <= 0:
        return 0, []
    return 0, [ProgressDisplay(plan.config.trials, list(plan.tuned), str(study_file(plan.path)))]


def _trainable(plan: SearchPlan, trainable: Callable[..., None]) -> Any:
    fn = tune.with_parameters(trainable, plan=plan)  # the plan (and its data) goes to the object store once
    return tune.with_resources(fn, plan.resources)


def build_tuner(plan: SearchPlan, concurrency: int, trainable: Callable[..., None]) -> tune.Tuner:
    """A new Tuner for ``plan``, running at most ``concurrency`` trials at once."""
    from optuna.samplers import TPESampler

    config = plan.config
    sampler = TPESampler(
        seed=config.seed, multivariate=True, n_startup_trials=min(10, max(4, config.trials // 3))
    )
    space = {name: distribution(p) for name, p in plan.tuned.items()}
    verbose, callbacks = console(plan)
    storage = study_storage(plan.path)  # opened with optuna-dashboard while the search runs
    warm = plan.warm
    if warm is not None:
        added, left_out = seed_study(plan.path, plan.path.name, warm, plan.space, _comparable(plan))
        if config.verbose > 0:
            print(f"warm start: {added} finished trials of {warm.source}"
                  + (f", {left_out} left out (outside this search's space)" if left_out else ""))
    else:  # a search from nothing begins with sound configurations, then the sampler's own
        enqueue_starts(plan.path, plan.path.name,
                       starting_points(plan.tuned, plan.data.season_length, config.trials))
    scheduler = (
        ASHAScheduler(
            time_attr="epoch",  # the rungs: config.rung_epochs(), which trials always report
            max_t=config.max_epochs,
            grace_period=config.grace_period or 1,
            reduction_factor=config.reduction_factor,
        )
        if config.scheduler == "asha"
        else FIFOScheduler()
    )
    searcher = EpochOptunaSearch(space=space, metric=SEARCH_METRIC, mode=MODE, sampler=sampler,
                                 storage=storage, study_name=plan.path.name)
    searcher.journal = str(study_file(plan.path))
    return tune.Tuner(
        _trainable(plan, trainable),
        tune_config=tune.TuneConfig(
            metric=SEARCH_METRIC,
            mode=MODE,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=config.trials,
            max_concurrent_trials=concurrency,
            time_budget_s=config.time_budget_s,
            reuse_actors=True,  # a new trial reuses a finished trial's worker: no torch re-import
        ),
        run_config=tune.RunConfig(
            name=plan.path.name,
            storage_path=plan.storage_path,  # a folder, or a URI (s3://...) Ray writes to itself
            failure_config=tune.FailureConfig(max_failures=config.retries()),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=SEARCH_METRIC, checkpoint_score_order=MODE
            ),
            verbose=verbose,
            callbacks=callbacks,
        ),
    )


def _comparable(plan: SearchPlan) -> dict[str, Any]:
    """Fixed training options beyond the space whose change changes what val_loss measures."""
    return {name: plan.config.train[name] for name in ("horizon",) if name in plan.config.train}


def restore_tuner(
    plan: SearchPlan, trainable: Callable[..., None], retry_errored: bool = False
) -> tune.Tuner:
    """The Tuner of an interrupted search, continuing its unfinished trials.

    Failed trials stay failed, except after a storage fault (``retry_errored``, or an error that
    says so): then they resume from their last checkpoint. Ray's flag covers every failed trial,
    so one that failed otherwise in that run resumes too.
    """

    def restore(errored: bool) -> tune.Tuner:
        return tune.Tuner.restore(
            plan.location,
            trainable=_trainable(plan, trainable),
            resume_unfinished=True,
            resume_errored=errored,
            restart_errored=False,
        )

    tuner = restore(retry_errored)
    grid = tuner.get_results()
    if not retry_errored and any(storage_error(grid[i].error) for i in range(len(grid))):
        tuner = restore(True)
    _set_console(tuner, plan)
    return tuner


def _set_console(tuner: tune.Tuner, plan: SearchPlan) -> None:
    """A restored Tuner runs with its pickled RunConfig: this run's ``--quiet``/``--verbose``
    replaces its verbosity and display (Ray's restore takes no RunConfig)."""
    verbose, callbacks = console(plan)
    # private: Ray has no public getter or setter of a restored Tuner's RunConfig (ray-project/ray#41364)
    run_config = getattr(getattr(tuner, "_local_tuner", None), "get_run_config", lambda: None)()
    if run_config is None:
        return
    run_config.verbose = verbose
    kept = [cb for cb in run_config.callbacks or [] if not isinstance(cb, ProgressDisplay)]
    run_config.callbacks = kept + callbacks
