"""Training: `fit` and what it is made of.

- `nn.training.loop`: `fit`, `train_step`, `evaluate`, `Callback`, `TrainingState`.
- `nn.training.plan`, `nn.training.resolve`, `nn.training.inputs`: `fit`'s arguments resolved
  (names to objects), checked and adapted to the model.
- `nn.training.evaluation`, `nn.training.metrics`: validation and metrics.
- `nn.training.progress`, `nn.training.history`, `nn.training.tables`: what `fit` prints and
  returns.
- `nn.training.callbacks`, `nn.training.rate_callbacks`, `nn.training.file_callbacks`:
  early stopping, learning-rate callbacks, CSV logs and checkpoints.
- `nn.training.saving`: `save_checkpoint` and `load_checkpoint` of a model and its optimizer.

Every public name is also `nn.<name>`.
"""
