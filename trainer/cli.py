"""Command line of the trainer: train, evaluate, export, ablation."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from segmentation.imageio import ImageReadError
from segmentation.weights import WeightsError
from trainer.checkpoint import CheckpointError
from trainer.config import DEFAULT_DATA_ENV, PRESETS, TrainConfig, preset
from trainer.data import DatasetError
from trainer.options import add_source_option, data_paths, parse_source


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as ``--field-name`` (values override the preset and the config file)."""
    group = parser.add_argument_group("training options (override the preset)")
    for field in fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if flag in {"--train-images", "--train-masks", "--val-images", "--val-masks", "--warm-start", "--init-weights"}:
            continue  # given by their own options
        if flag == "--sources":
            continue  # --source, repeatable
        group.add_argument(flag, dest=f"cfg_{field.name}", default=None, metavar=field.name.upper())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model (the paper's recipe by default)")
    train.add_argument("--data", help=f"an ISIC 2017 folder (official layout); default: ${DEFAULT_DATA_ENV}")
    train.add_argument("--train-images", help="folder of training images ISIC_<id>.jpg")
    train.add_argument("--train-masks", help="folder of training masks ISIC_<id>_segmentation.png")
    train.add_argument("--val-images", help="folder of validation images")
    train.add_argument("--val-masks", help="folder of validation masks")
    train.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    train.add_argument("--config", help="a JSON file of options (applied after the preset)")
    train.add_argument("--run-dir", help="where the run's config, log, curves and checkpoints go")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    train.add_argument(
        "--warm-start",
        metavar="WEIGHTS",
        help="continue a lost run from its exported weights (counters and schedule from the file's metadata)",
    )
    train.add_argument("--warm-start-log", metavar="LOG_CSV", help="the lost run's log.csv, to keep the log whole")
    train.add_argument(
        "--init-weights",
        metavar="WEIGHTS",
        help="start a new run from an exported model's tensors (fresh counters and schedule: fine-tuning)",
    )
    add_source_option(train)
    train.add_argument("--device", default="auto")
    train.add_argument("--quiet", action="store_true")
    _add_config_options(train)

    from trainer import ablation, arms, compare, evaluate, export, gpu, plain_skin, quality_command

    for module in (evaluate, export, ablation, compare, arms, gpu, quality_command, plain_skin):
        module.add_parser(commands)
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    config = preset(args.preset)
    if args.config:
        config = config.override(json.loads(Path(args.config).read_text()))
    overrides = {key[4:]: value for key, value in vars(args).items() if key.startswith("cfg_") and value is not None}
    sources = [parse_source(text) for text in getattr(args, "source", [])]
    if sources:
        overrides["sources"] = (*config.sources, *sources)
    return config.override({**overrides, **data_paths(args)})


def run_train(args: argparse.Namespace) -> int:
    from trainer.engine import Trainer

    if args.resume:
        run_dir = Path(args.resume)
        config = TrainConfig.load(run_dir / "config.json")
        overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
        config = config.override(overrides)  # e.g. more --epochs for a run that should go on
        trainer = Trainer(config, run_dir, device=args.device, quiet=args.quiet)
        trainer.resume()
        print(
            f"resumed {run_dir} at epoch {trainer.epoch} (best Dice so far {trainer.best_dice:.4f})",
            flush=True,
        )
    else:
        config = resolve_config(args)
        run_dir = Path(args.run_dir or f"runs/{args.preset}-{config.variant}-w{config.base_width}-seed{config.seed}")
        if (run_dir / "last.pt").exists():
            raise SystemExit(f"error: {run_dir} already holds a run; use --resume {run_dir} or another --run-dir")
        trainer = Trainer(config, run_dir, device=args.device, quiet=args.quiet)
        if args.init_weights and args.warm_start:
            raise SystemExit("error: --init-weights starts a new schedule, --warm-start continues one: pass one")
        if args.init_weights:
            try:
                trainer.initialise_from(args.init_weights)
            except (ValueError, OSError, WeightsError) as error:
                raise SystemExit(f"error: {error}") from error
            print(f"initialised from {args.init_weights}; new schedule from step 0")
        if args.warm_start:
            try:
                trainer.warm_start(args.warm_start, args.warm_start_log)
            except (ValueError, OSError, WeightsError) as error:
                raise SystemExit(f"error: {error}") from error
            print(f"warm start from {args.warm_start} at epoch {trainer.epoch} (best Dice {trainer.best_dice:.4f})")
    best = trainer.fit()
    print(f"done: best validation Dice {best:.4f}; run folder {run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        return args.handler(args)
    except (DatasetError, ImageReadError, CheckpointError) as error:  # bad data or checkpoint: named, no traceback
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
