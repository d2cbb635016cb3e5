"""The course, reproduced: each claim of the notes on tuning, batch norm and softmax becomes a
short section that measures it and says whether it held on this library.

    python -m benchmarks.course            # every section (under two minutes)
    python -m benchmarks.course --quick    # smaller (3-7 s of CPU)
    python -m benchmarks.course --only 6 7 # chosen sections

One module per group of claims (`tuning`, `caviar_panda`, `batchnorm_training`, `batchnorm`,
`softmax`, `tensorflow_example`); `common` holds what they share; `tour` runs and prints them.
"""

from .common import SECTIONS, Config, Outcome, Section
from .tour import Result, run

__all__ = ["SECTIONS", "Config", "Outcome", "Result", "Section", "run"]
