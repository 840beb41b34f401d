"""The ``lesionlens`` console script: ``segment ...`` and ``--self-test`` run headless; anything else opens the GUI.

Qt is imported only on the GUI path, so the batch command and the self-test work on a server without a display.
The PyInstaller bundle (``build.spec``) uses this same entry point.
"""

from __future__ import annotations

import importlib.util
import sys

USAGE = """\
LesionLens - skin lesion segmentation for dermoscopy images

  lesionlens segment INPUT... --out DIR [--weights FILE]   segment images/folders headlessly
  lesionlens --self-test [--device cpu|cuda|auto]          check this installation segments correctly
  lesionlens [IMAGE_OR_FOLDER...]                           open the desktop app
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "segment":
        from segmentation.cli import main as segment_main

        return segment_main(argv[1:])
    if argv and argv[0] == "--self-test":
        from segmentation.selftest import main as selftest_main

        return selftest_main(argv[1:])
    if argv and argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    return open_gui(argv)


def open_gui(argv: list[str]) -> int:
    if importlib.util.find_spec("app.main_window") is None:
        print(
            "The LesionLens desktop window is not built yet, and no trained model is bundled yet.\n"
            "What works today is headless segmentation with a weights file:\n\n"
            "  .venv/bin/lesionlens segment resources/samples --out masks --weights MODEL.safetensors\n\n"
            "Train and export a model with:\n"
            "  .venv/bin/python -m trainer train --data ../shared/datasets/isic2017 --preset cpu\n"
            "  .venv/bin/python -m trainer export runs/<run> --out MODEL.safetensors\n",
            file=sys.stderr,
        )
        return 0
    from app.main_window import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
