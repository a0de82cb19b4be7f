"""Hyperparameter search with Ray Tune and Optuna (the only package that imports them).

``run_search`` lives in :mod:`search.run`; importing this package does not start or import
Ray, so the CLI stays fast for ``tunecast train`` and ``tunecast report``.
"""
