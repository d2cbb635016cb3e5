"""Run management: one model trained epoch by epoch, checkpointed, nudged, rolled back and
resumed (`nn.Babysitter`).

- `nn.runs.babysitter`: `Babysitter`, run control (train, set, rollback, resume, plot).
- `nn.runs.runlog`: the event log, hyperparameters as JSON, `RunHistory`.
- `nn.runs.checkpoints`: the checkpoint format and whether a checkpoint fits.
- `nn.runs.fingerprint`: a hash of the data, so that a run resumes only on its own data.
- `nn.runs.lock`: the run directory's OS lock.
- `nn.runs.plot`: the learning curves of a log.
"""
