"""Parameter counts and multiply-accumulates per Table II variant and base width (the table in docs/MODEL.md).

Run: .venv/bin/python benchmarks/model_complexity.py [--size 224]
"""

from __future__ import annotations

import argparse

from segmentation.network import VARIANTS, NetworkConfig, build_model, count_macs, count_parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    args = parser.parse_args()
    print(f"| variant | width | parameters | GMACs at {args.size}x{args.size} |")
    print("|---|---:|---:|---:|")
    for variant in VARIANTS:
        for width in args.widths:
            model = build_model(NetworkConfig(variant=variant, base_width=width))
            macs = count_macs(model, args.size, args.size)
            print(f"| {variant} | {width} | {count_parameters(model):,} | {macs / 1e9:.2f} |")


if __name__ == "__main__":
    main()
