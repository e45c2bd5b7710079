"""Orchestration, above training: benchmark suites (:mod:`.suite`), Ray Tune sweeps (:mod:`.sweep`),
the jobs behind ``train-dynamics``/``train-reward``/``distil-reward``/``eval-model`` (:mod:`.jobs`)
and the multi-stage experiments behind the evidence in docs/ (:mod:`.credit_training`,
:mod:`.generalisation`). Nothing below (training, learners, the core) imports this package."""
