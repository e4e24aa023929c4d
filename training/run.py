"""``python -m training.run [experiment=...] [overrides]``: compose the Hydra config, train, return the
metric.

Under ``torchrun`` every rank runs this; ranks > 0 get no run dir or log file of their own (rank 0 owns them).
Errors a user can fix (unknown model, missing data path, offline hub) end the run with one line and exit code
2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger("training.run")


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from training.checks import check_config  # no work at import time
    from training.data.errors import DataError
    from training.errors import TrainingError

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        check_config(cfg)  # before torch/transformers are imported: a typo costs a second, not half a minute
        from training.train import train

        summary = train(cfg, run_dir)
    except (TrainingError, DataError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    return float(summary["best_val_macro_f1"])


def cli() -> None:
    from training.distributed import hydra_worker_overrides

    sys.argv += hydra_worker_overrides()
    main()


if __name__ == "__main__":
    cli()
