"""Tuning a population while it trains: culling the worst members and population-based
training (`nn.cull`, `nn.population_based_training`).

- `nn.tuning.culling`: `cull`, `rank_members`.
- `nn.tuning.pbt`: `population_based_training`, `copy_member`, `HyperparameterSchedule`
  (replays a member's schedule), `plot_pbt`.
"""
