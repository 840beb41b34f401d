"""Safety of the desktop app (issue 18): untrusted model names are shown as plain text, the folder walk gets past a
bad image, an unusable autosave is kept aside and the user told, and the app's own folders are private."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

from segmentation.network import NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.weights import save_weights

pytestmark = pytest.mark.gui
WAIT_MS = 15_000
HTML_NAME = '<a href="https://example.org">link</a><img src="/etc/lesionlens-probe.png">\n\x1b[31mred'


@pytest.fixture
def html_named_weights(tmp_path: Path) -> Path:
    torch.manual_seed(5)
    path = tmp_path / "html-named.safetensors"
    save_weights(
        path,
        build_model(NetworkConfig(variant="full", base_width=4)),
        name=HTML_NAME,
        preprocessing=Preprocessing(input_size=(48, 64)),
    )
    return path


def test_a_model_name_with_html_and_escapes_is_shown_as_plain_text(make_window, html_named_weights: Path) -> None:
    window = make_window(html_named_weights)
    shown = '<a href="https://example.org">link</a><img src="/etc/lesionlens-probe.png"> red'
    label = window.status.model_label
    assert label.textFormat() == Qt.TextFormat.PlainText
    assert shown in label.text() and "\x1b" not in label.text()
    banner = window.weights_banner  # the model records no validation: the banner quotes its name
    assert banner.isVisible() and banner.label.textFormat() == Qt.TextFormat.PlainText
    assert shown in banner.label.text()
    dialog = window.show_about()
    rendered = QTextDocument()
    rendered.setHtml(dialog.label.text())
    assert shown in rendered.toPlainText(), "the About box shows the name's characters, not a link and an image"
    dialog.close()


def test_next_image_gets_past_bad_images_to_the_ones_after_them(window, tmp_path: Path, rgb_image, qtbot) -> None:
    from PIL import Image

    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(rgb_image(48, 64, seed=1)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"not an image at all")
    (folder / "c.jpg").write_bytes(b"")
    Image.fromarray(rgb_image(48, 64, seed=2)).save(folder / "d.png")
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.open_paths([folder])
    assert window.document.path == folder / "a.png"
    for bad in ("b.png", "c.jpg"):
        with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
            window.step_image(1)  # PgDown / N
        assert bad in window.last_error
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.step_image(1)
    assert window.document.path == folder / "d.png", "the walk reached the image after the bad ones"
    with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
        window.step_image(-1)  # and back: PgUp from d meets c, then b, then a
    with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
        window.step_image(-1)
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.step_image(-1)
    assert window.document.path == folder / "a.png"


def test_an_unusable_autosave_is_kept_aside_and_the_user_told(
    make_window, image_folder: Path, open_segmented, qtbot, lesionlens_home: Path
) -> None:
    import numpy as np

    path = image_folder / "lesion_1.png"
    first = make_window()
    open_segmented(first, path)
    first.document.paint(np.ones((8, 8), bool), (10, 10), not first.document.mask[10, 10], "Brush stroke")
    first.close()  # saves at once
    autosave = lesionlens_home / "autosave"
    (meta,) = autosave.glob("*.json")
    damaged = meta.read_bytes()[:25]
    meta.write_bytes(damaged)  # truncated, as a crash of the disk (not of LesionLens) would leave it

    second = make_window()
    with qtbot.waitSignal(second.segmented, timeout=WAIT_MS):
        second.open_paths([path])
    assert not second.document.edited, "the model's mask is shown"
    message = second.message_banner.label.text()
    assert second.message_banner.isVisible()
    assert "Your saved edits of lesion_1.png could not be restored" in message
    assert "damaged or incomplete" in message and str(autosave / "unusable") in message
    kept = list((autosave / "unusable").glob("*.json"))
    assert [p.read_bytes() for p in kept] == [damaged], "the damaged file is kept, byte for byte"
    assert len(list((autosave / "unusable").glob("*.png"))) == 1


def test_an_expected_autosave_failure_is_logged_without_a_traceback(
    make_window, image_folder: Path, open_segmented, qtbot, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import errno
    import logging
    import os

    import numpy as np

    from segmentation.imageio import OutputWriteError

    window = make_window()
    open_segmented(window, image_folder / "lesion_0.png")

    def disk_full(path, state):
        raise OutputWriteError(path, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(window.autosave.store, "save", disk_full)
    with (
        caplog.at_level(logging.WARNING, logger="lesionlens"),
        qtbot.waitSignal(window.autosave.failed, timeout=WAIT_MS),
    ):
        window.document.paint(np.ones((4, 4), bool), (5, 5), not window.document.mask[5, 5], "Brush stroke")
    records = [r for r in caplog.records if "autosave" in r.getMessage()]
    assert records and all(r.exc_info is None for r in records), "an expected error: its reason, no traceback"
    assert "No space left on device" in records[0].getMessage() or "disk full" in records[0].getMessage()
    assert "Traceback" not in caplog.text
