"""One provenance record: an export from the window and a batch of the same image name the model, the device and
the backend under the same keys (segmentation.provenance)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from segmentation.batch import RESULTS_NAME, BatchItem, BatchSegmenter, ResultsTable
from segmentation.provenance import PROVENANCE_KEYS

pytestmark = pytest.mark.gui
WAIT_MS = 15_000
#: What every GeoJSON boundary adds (segmentation.geojson).
GEOJSON = {"image", "image_size", "coordinate_convention", "regions"}
#: What an export adds to the result's record: the source, when, what was measured, the quality estimate.
EXPORT_ONLY = GEOJSON | {
    "measured_regions",
    "estimated_dice",
    "needs_review",
    "quality_reasons",
    "app_version",
    "exported_at",
    "source_image",
    "source_sha256",
}


def _geojson_properties(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["features"][0]["properties"]


def test_export_records_device_and_backend_like_the_batch(window, image_folder, qtbot, tmp_path) -> None:
    source = image_folder / "lesion_0.png"
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([source])
    predictor = window.predictor
    out = tmp_path / "exports"
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
        assert window.export(out)
    exported = _geojson_properties(out / "lesion_0_boundary.geojson")
    with (out / "lesion_0_measurements.csv").open(newline="", encoding="utf-8") as handle:
        exported_row = next(csv.DictReader(handle))
    for record in (exported, exported_row):
        assert record["device"] == predictor.device_description and predictor.device_description
        assert record["backend"] == predictor.backend.name and predictor.backend.name
        assert record["model_sha256"] == predictor.weights_sha256

    batch_out = tmp_path / "batch"
    segmenter = BatchSegmenter(predictor, batch_out, geojson=True)
    table = ResultsTable(batch_out / RESULTS_NAME, segmenter.provenance())
    for result in segmenter.run([BatchItem(source, Path(source.name))]):
        assert result.status == "ok", result.error
        table.add(result)
    table.save()
    batch = _geojson_properties(batch_out / "lesion_0_boundary.geojson")
    with (batch_out / RESULTS_NAME).open(newline="", encoding="utf-8") as handle:
        batch_row = next(csv.DictReader(handle))

    # The same keys: the batch's record is the result's provenance, the export's that plus what an export adds.
    assert set(batch) - GEOJSON == set(PROVENANCE_KEYS)
    assert set(exported) - EXPORT_ONLY == set(PROVENANCE_KEYS)
    assert list(batch_row)[-len(PROVENANCE_KEYS) :] == list(PROVENANCE_KEYS)
    assert set(PROVENANCE_KEYS) <= set(exported_row)
    for key in ("model", "model_sha256", "model_created", "device", "backend", "threshold"):
        assert str(exported[key]) == str(batch[key]) == batch_row[key], key
