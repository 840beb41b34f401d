"""The estimated Dice in the GUI: the folder fills in the background, review-first order, the batch table.

The bundled (trained) model on the bundled samples, so the estimates are real; a copy of its weights with another
operating point shows that the review flag follows the metadata.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from segmentation.resources import bundled_weights_path, samples_dir
from segmentation.weights import read_model_info, rewrite_metadata

pytestmark = pytest.mark.gui
WAIT_MS = 30_000
SAMPLES = ("ISIC_0012126.jpg", "ISIC_0012660.jpg", "ISIC_0013127.jpg")


@pytest.fixture(autouse=True)
def _torch_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESIONLENS_BACKEND", "torch")  # no ONNX export and timing: faster start


def weights_with(folder: Path, review_below: float) -> Path:
    copy = folder / f"review-below-{review_below}.safetensors"
    shutil.copyfile(bundled_weights_path(), copy)
    info = read_model_info(copy)
    rewrite_metadata(copy, replace(info, quality=replace(info.quality, review_below=review_below)))
    return copy


@pytest.fixture
def sample_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clinic"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copyfile(samples_dir() / name, folder / name)
    return folder


def test_an_opened_folder_fills_with_estimates_in_the_background(make_window, sample_folder, tmp_path, qtbot):
    window = make_window(weights_with(tmp_path, review_below=1.0))
    panel = window.folder_panel
    window.open_paths([sample_folder])
    qtbot.waitUntil(lambda: all(panel.flags(p) is not None for p in panel.paths()), timeout=WAIT_MS)
    for path in panel.paths():
        text = panel.item_text(path)
        assert "estimated Dice 0." in text, text
        assert "needs review" in text, "every outline is below an operating point of 1.0"
    assert panel.state(sample_folder / SAMPLES[1]) == "AI mask"
    assert "3 need review" in panel.summary.text()


def test_moving_on_before_the_first_image_is_segmented_still_fills_the_list(make_window, sample_folder, qtbot):
    """The clinician opens a folder and at once steps to another image: the first image's result, or its place in
    the background queue, is not lost, so every row still gets its estimate."""
    window = make_window(bundled_weights_path())
    panel = window.folder_panel
    window.open_paths([sample_folder])
    window.open_image(sample_folder / SAMPLES[2])  # before the first one's segmentation came back
    qtbot.waitUntil(lambda: all(panel.flags(p) is not None for p in panel.paths()), timeout=WAIT_MS)
    assert "estimated Dice 0." in panel.item_text(sample_folder / SAMPLES[0])
    assert panel.state(sample_folder / SAMPLES[0]) == "AI mask"


def test_moving_on_while_the_shown_image_is_segmented_still_fills_the_list(
    make_window, sample_folder, qtbot, monkeypatch
):
    """The first image opened, but the clinician steps on while its segmentation is still running (that result is
    then dropped): the image goes back to the background queue and its row still gets an estimate."""
    import time

    import app.main_window as main_window
    from app.workers import segment_task

    first = sample_folder / SAMPLES[0]

    def slow_for_the_first(context, predictor, path, image):
        if path == first:
            time.sleep(1.0)  # still running when the clinician moves on
        return segment_task(context, predictor, path, image)

    monkeypatch.setattr(main_window, "segment_task", slow_for_the_first)
    window = make_window(bundled_weights_path())
    panel = window.folder_panel
    window.open_paths([sample_folder])
    qtbot.waitUntil(lambda: window.document.path == first, timeout=WAIT_MS)  # opened, being segmented
    window.open_image(sample_folder / SAMPLES[2])
    qtbot.waitUntil(lambda: all(panel.flags(p) is not None for p in panel.paths()), timeout=WAIT_MS)
    assert "estimated Dice 0." in panel.item_text(first)


def test_review_first_orders_by_the_estimate_and_the_keyboard_follows(make_window, sample_folder, qtbot):
    window = make_window(bundled_weights_path())
    panel = window.folder_panel
    window.open_paths([sample_folder])
    qtbot.waitUntil(lambda: all(panel.flags(p) is not None for p in panel.paths()), timeout=WAIT_MS)
    review_below = window.predictor.info.quality.review_below
    estimates = {p: panel.flags(p).estimated_dice for p in panel.paths()}
    assert all(f"estimated Dice {estimates[p]:.2f}" in panel.item_text(p) for p in panel.paths())
    assert all(("needs review" in panel.item_text(p)) == (estimates[p] < review_below) for p in panel.paths())
    assert panel.paths() == sorted(estimates), "by name until asked"
    window.named_actions["review_first"].trigger()
    ordered = panel.paths()
    assert ordered == sorted(estimates, key=lambda p: (estimates[p] >= review_below, estimates[p]))
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.open_image(ordered[0])
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS) as blocker:
        window.step_image(1)  # PgDown
    assert blocker.args == [ordered[1]]


def test_the_lesion_panel_and_banner_show_the_estimate(make_window, sample_folder, tmp_path, qtbot):
    window = make_window(weights_with(tmp_path, review_below=1.0))
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.open_paths([sample_folder / SAMPLES[0]])
    label = window.measurements_panel.quality_label.text()
    assert label.startswith("Estimated Dice: 0.")
    assert "Needs review: estimated Dice" in label
    assert window.flags_banner.text().startswith("Check this result: needs review")
    provenance = window.document.provenance()
    assert provenance["needs_review"] is True and 0 < provenance["estimated_dice"] < 1


def test_the_batch_table_offers_a_review_first_order(make_window, sample_folder, tmp_path, qtbot):
    window = make_window(bundled_weights_path())
    dialog = window.show_batch_dialog()
    dialog.set_inputs([sample_folder])
    dialog.set_output(tmp_path / "masks")
    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS):
        assert dialog.start()
    column = dialog.table.horizontalHeaderItem(3).text()
    assert column == "Estimated Dice"
    dialog.review_first.click()
    shown = [float(dialog.table.item(row, 3).text()) for row in range(dialog.table.rowCount())]
    review_below = window.predictor.info.quality.review_below
    assert shown == sorted(shown, key=lambda e: (e >= review_below, e))
    assert len(shown) == len(SAMPLES)


def test_a_new_model_estimates_the_folder_again(make_window, sample_folder, tmp_path, qtbot):
    window = make_window(weights_with(tmp_path, review_below=0.0))
    panel = window.folder_panel
    window.open_paths([sample_folder])
    others = panel.paths()[1:]
    qtbot.waitUntil(lambda: all(panel.flags(p) is not None for p in others), timeout=WAIT_MS)
    assert not any("needs review" in panel.item_text(p) for p in others)
    with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS):
        window.load_model(weights_with(tmp_path, review_below=1.0), "cpu")
    qtbot.waitUntil(lambda: all("needs review" in panel.item_text(p) for p in others), timeout=WAIT_MS)
