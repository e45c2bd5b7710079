"""``morec train``: train MOPO or MOBILE (MOREC on or off) from a YAML config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..bundled_configs import find_config

if TYPE_CHECKING:
    from algos.config import TrainConfig

NAME = "train"
HELP = "train MOPO or MOBILE (MOREC on or off) from a YAML config"


def dataset_source(text: str) -> str:
    """``--dataset``: any non-empty text, passed on as it is (an empty one would mean "the config's")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a dataset: a file path, d4rl:NAME, neorl:NAME or minari:ID")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", default=None,
                   help="a YAML file, or a bundled config by its path under configs/, e.g. d4rl/hopper-medium-v2/mobile_morec.yaml "
                        "(default: built-in defaults); repeat to lay overlays over it, e.g. --config shaping/clip.yaml")
    p.add_argument("--dataset", type=dataset_source, default=None,
                   help="dataset source overriding the config's (file, d4rl:, neorl:, minari:), taken as it is")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. rollout.horizon=100")
    p.add_argument("--run-dir", default=None, help="run directory (default: runs/<task>-<algorithm>[-morec]/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--seeds", default=None, metavar="N,N,...",
                   help="train these seeds together in one process, each in <run-dir>/seed<N> as a separate run would be; "
                        "train.stack_seeds (auto: on CUDA) updates them as one stacked learner "
                        "(default run dir: runs/<task>-<algorithm>[-morec])")
    p.add_argument("--no-progress", action="store_true")


def training_config(config: str | list[str] | None, overrides: list[str], dataset: str | None = None) -> TrainConfig:
    """``config`` (a file or a bundled config, ``None``: the defaults; a list: later files laid over
    the first) with the ``overrides`` (``KEY=VALUE``, values in YAML), then ``dataset`` as it is: a
    path is never parsed as YAML."""
    from algos.config import load_config

    first, *later = [config] if isinstance(config, str) else (config or [None])
    cfg = load_config(find_config(first), overrides, overlays=[find_config(c) for c in later])
    if dataset is not None:
        cfg.dataset = dataset
    return cfg


def run(args: argparse.Namespace) -> int:
    from algos.seeds import parse_seeds, train_seeds
    from algos.train import Trainer

    cfg = training_config(args.config, args.set, args.dataset)
    if args.seeds is not None:
        run_root = Path(args.run_dir or f"runs/{cfg.name}")
        summaries = train_seeds(cfg, run_root, parse_seeds(args.seeds), resume=args.resume, show_progress=not args.no_progress)
        print(json.dumps([{k: v for k, v in s.items() if k != "evaluations"} for s in summaries], indent=2))
        print(f"TensorBoard: tensorboard --logdir {run_root}")
        return 0
    run_dir = Path(args.run_dir or f"runs/{cfg.name}/seed{cfg.seed}")
    summary = Trainer(cfg, run_dir, resume=args.resume, show_progress=not args.no_progress).run()
    print(json.dumps({k: v for k, v in summary.items() if k != "evaluations"}, indent=2))
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    return 0
