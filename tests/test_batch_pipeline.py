"""The batch engine's pipeline: decoding runs ahead of the network by a bounded amount, results keep input order,
every result means its mask is on disk, and cancelling or stopping early runs no further image through the model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segmentation.batch as batch
from segmentation.batch import IN_FLIGHT, RESULTS_NAME, BatchItem, BatchSegmenter, ResultsTable
from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor
from segmentation.measurements import LesionMeasurements, measure_lesion
from segmentation.quality import QualityAssessment
from segmentation.tables import read_csv_rows


@pytest.fixture
def folder(tmp_path: Path, rgb_image) -> list[BatchItem]:
    paths = []
    for index in range(8):
        path = tmp_path / "in" / f"img_{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rgb_image(40 + index, 50, seed=index)).save(path)
        paths.append(path)
    return [BatchItem(p, Path(p.name)) for p in paths]


class _Recording:
    """Wraps the reader and the predictor to record how far decoding ran ahead of the network."""

    def __init__(self, predictor: Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[str] = []
        self.inferred: list[str] = []
        self.ahead: list[int] = []
        self.lock = threading.Lock()
        real_read, real_predict = batch._timed_read, predictor.predict

        def read(item, max_megapixels):
            with self.lock:
                self.reads.append(item.source.name)
            return real_read(item, max_megapixels)

        def predict(image, threshold):
            with self.lock:
                self.inferred.append(len(self.inferred))
                self.ahead.append(len(self.reads) - len(self.inferred))
            return real_predict(image, threshold)

        monkeypatch.setattr(batch, "_timed_read", read)
        monkeypatch.setattr(predictor, "predict", predict)


def test_results_in_order_with_masks_on_disk_and_bounded_read_ahead(
    folder, tmp_path: Path, tiny_weights: Path, monkeypatch
) -> None:
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    recording = _Recording(predictor, monkeypatch)
    out = tmp_path / "out"
    results = []
    for result in BatchSegmenter(predictor, out).run(folder):
        assert result.status == "ok"
        assert result.mask_path.exists(), "a result is reported only once its mask is written"
        results.append(result.item.source.name)
    assert results == [item.source.name for item in folder]
    assert len(recording.inferred) == len(folder)
    assert max(recording.ahead) <= IN_FLIGHT - 1  # decoded-but-not-inferred images never exceed the pipeline


def test_cancel_finishes_the_images_past_the_network_and_starts_no_more(
    folder, tmp_path: Path, tiny_weights: Path, monkeypatch
) -> None:
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    recording = _Recording(predictor, monkeypatch)
    cancel = threading.Event()
    seen = []
    for result in BatchSegmenter(predictor, tmp_path / "out").run(folder, cancel=cancel):
        seen.append(result)
        if len(seen) == 2:
            cancel.set()
    # Cancel came after the 2nd result: at most the images already inferred by then are finished.
    assert 2 <= len(seen) <= 2 + IN_FLIGHT - 1
    assert len(recording.inferred) == len(seen)
    assert all(r.mask_path.exists() for r in seen)
    masks = sorted(p.name for p in (tmp_path / "out").glob("*_segmentation.png"))
    assert masks == sorted(f"{r.item.source.stem}_segmentation.png" for r in seen)


def test_stopping_iteration_early_runs_no_further_image(
    folder, tmp_path: Path, tiny_weights: Path, monkeypatch
) -> None:
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    recording = _Recording(predictor, monkeypatch)
    run = BatchSegmenter(predictor, tmp_path / "out").run(folder)
    first = next(run)
    run.close()  # the caller stops (a closed dialog, an exception in the consumer)
    assert first.status == "ok"
    assert len(recording.inferred) <= IN_FLIGHT


def test_an_unreadable_image_is_an_error_in_its_place(folder, tmp_path: Path, tiny_weights: Path) -> None:
    broken = folder[3].source
    broken.write_bytes(b"not an image")
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    results = list(BatchSegmenter(predictor, tmp_path / "out").run(folder))
    assert [r.status for r in results] == ["ok", "ok", "ok", "error", "ok", "ok", "ok", "ok"]
    assert str(broken) in results[3].error
    assert np.all([r.mask_path.exists() for r in results if r.ok])


def test_results_carry_typed_quality_and_measurements_that_only_the_table_flattens(
    folder, tmp_path: Path, tiny_weights: Path
) -> None:
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    out = tmp_path / "out"
    segmenter = BatchSegmenter(predictor, out, mm_per_pixel=0.01, overlay=True)
    table = ResultsTable(out / RESULTS_NAME, segmenter.provenance())
    results = list(segmenter.run(folder[:2]))
    for result in results:
        table.add(result, save=False)
    table.save()
    rows = {Path(row["file"]).name: row for row in read_csv_rows((out / RESULTS_NAME).read_text(encoding="utf-8"))}
    assert any(result.measurements is not None for result in results), "the check needs a lesion to measure"
    for result in results:
        assert isinstance(result.quality, QualityAssessment)
        assert result.measurements is None or isinstance(result.measurements, LesionMeasurements)
        mask = read_mask(result.mask_path)
        expected = measure_lesion(mask, read_image(result.item.source), mm_per_pixel=0.01)
        assert result.measurements == expected  # in mm: the run's calibration
        row = rows[result.item.source.name]
        assert row["needs_review"] == str(result.quality.needs_review)
        assert row["reasons"] == "; ".join(result.quality.reasons())
        if expected is not None:
            assert float(row["area_mm2"]) == pytest.approx(expected.area)
        assert Path(row["overlay"]) == result.outputs["overlay"].absolute()
        assert (row["calibration_source"], float(row["mm_per_pixel"])) == ("typed", 0.01)
