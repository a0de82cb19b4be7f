"""The Ray Tune ``Tuner`` of a plan: OptunaSearch (seeded multivariate TPE), ASHA or FIFO,
best-only checkpoints, and the data in Ray's object store once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from expdir.contract import MODE, SEARCH_METRIC
from search.optuna_space import distribution
from search.plan import SearchPlan
from search.storage import storage_error


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
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=config.max_epochs,
            grace_period=config.grace_period or 1,
            reduction_factor=config.reduction_factor,
        )
        if config.scheduler == "asha"
        else FIFOScheduler()
    )
    return tune.Tuner(
        _trainable(plan, trainable),
        tune_config=tune.TuneConfig(
            metric=SEARCH_METRIC,
            mode=MODE,
            search_alg=OptunaSearch(space=space, metric=SEARCH_METRIC, mode=MODE, sampler=sampler),
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
            verbose=config.verbose,
        ),
    )


def restore_tuner(
    plan: SearchPlan, trainable: Callable[..., None], retry_errored: bool = False
) -> tune.Tuner:
    """The Tuner of an interrupted search, continuing its unfinished trials.

    Trials that failed are left failed, except after a storage fault: trials that died writing
    to a full or read-only disk (``retry_errored``, or an error that says so) resume from their
    last checkpoint. Ray's restore takes one flag for every failed trial, so a trial that
    failed for another reason in that same run is resumed too.
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
    return tuner
