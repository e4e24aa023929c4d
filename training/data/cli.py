"""Command line of the data stage: ``python -m training.data {prepare,download,sample} ...``.

``prepare`` and ``download`` compose ``configs/prepare.yaml`` (defaults: ``data: sample``) with Hydra
overrides given after the subcommand, e.g. ``python -m training.data prepare
'data.paths=[../shared/data/tickets]' data.target=queue data.labels=null``. Every expected failure ends with
one sentence on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("training.data")

EXIT_DATA_ERROR = 1
EXIT_USAGE = 2

EPILOG = """\
examples:
  python -m training.data prepare                                   # the embedded sample (data=sample)
  python -m training.data prepare data=tickets                      # ../shared/data/tickets
  python -m training.data prepare 'data.paths=[../shared/data/tickets]' data.output_dir=data/processed/tickets
  python -m training.data prepare data=tickets data.target=queue data.labels=null
  python -m training.data prepare --cfg                             # show the composed config and exit
  python -m training.data download                                  # full dataset (HF hub) into data/raw
  python -m training.data sample                                    # rewrite data/sample/tickets.csv

config keys (data group, configs/data/*.yaml): paths, exclude, output_dir, target, labels, label_map,
text_recipe.{fields,separator}, split.{val,test}, seed, unescape, recursive, name. See docs/data.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.data",
        description="ticket-triage data stage: load, validate, dedupe and split ticket files; fetch the "
        "dataset; "
        "write the embedded sample.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        help="logging level (default: $LOG_LEVEL or INFO)",
    )
    commands = parser.add_subparsers(dest="command", metavar="{prepare,download,sample}", required=True)
    for name, text in (
        ("prepare", "write {train,val,test}.parquet and stats.json to data.output_dir"),
        ("download", "fetch the full dataset (download.source=hf|kaggle) into download.dest (data/raw)"),
    ):
        command = commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument(
            "overrides", nargs="*", help="Hydra overrides of configs/prepare.yaml (key=value)"
        )
        command.add_argument("--cfg", action="store_true", help="print the composed config and exit")
    sample = commands.add_parser(
        "sample",
        help="(re)write the embedded synthetic sample",
        description="(re)write the embedded synthetic sample deterministically",
    )
    sample.add_argument(
        "--output", type=Path, default=None, help="target file (default: data/sample/tickets.csv)"
    )
    sample.add_argument(
        "--seed", type=int, default=None, help="generator seed (default: the committed sample's)"
    )
    sample.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from what would be written"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.logging_setup import configure_logging

    configure_logging(str(args.log_level))
    from training.data.errors import DataError

    try:
        if args.command == "sample":
            return _sample(args.output, args.seed, args.check)
        return _with_config(args.command, args.overrides, args.cfg)
    except DataError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_DATA_ERROR


def _with_config(command: str, overrides: list[str], show: bool) -> int:
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from training.data.config import compose

    try:
        cfg = compose("prepare", overrides)
    except (HydraException, OmegaConfBaseException) as error:
        message = " ".join(str(error).split())
        sys.stderr.write(
            f"error: bad config override ({message}); see `python -m training.data {command} --cfg`\n"
        )
        return EXIT_USAGE
    if show:
        sys.stdout.write(OmegaConf.to_yaml(cfg))
        return 0
    if command == "download":
        from training.data.download import download

        download(OmegaConf.to_container(cfg.download, resolve=True))  # type: ignore[arg-type]
        return 0
    from training.data.prepare import prepare
    from training.data.report import format_summary

    prepared = prepare(cfg.data)
    sys.stdout.write(format_summary(prepared.stats, str(prepared.output_dir)))
    return 0


def _sample(output: Path | None, seed: int | None, check: bool) -> int:
    from training.data.config import PROJECT_ROOT
    from training.data.sample import DEFAULT_SEED, SAMPLE_PATH, generate_sample, render_csv, write_sample

    path = output or PROJECT_ROOT / SAMPLE_PATH
    seed = DEFAULT_SEED if seed is None else seed
    if check:
        expected = render_csv(generate_sample(seed)).encode("utf-8")
        if not path.is_file() or path.read_bytes() != expected:
            sys.stderr.write(
                f"error: {path} differs from the generator's output; run `python -m training.data sample`\n"
            )
            return EXIT_DATA_ERROR
        logger.info("%s matches the generator", path)
        return 0
    write_sample(path, seed)
    logger.info("wrote %s", path)
    return 0
