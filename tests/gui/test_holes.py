"""A hole erased inside the lesion gets its own boundary line, visible with the fill off."""

from __future__ import annotations

import numpy as np

WAIT_MS = 15_000


def test_inner_boundaries_are_drawn(window, image_folder, open_segmented, qtbot) -> None:
    open_segmented(window, image_folder / "lesion_0.png")
    if window.named_actions["toggle_fill"].isChecked():
        window.named_actions["toggle_fill"].trigger()  # fill off: only the boundary shows the hole
    mask = np.zeros((48, 64), bool)
    mask[5:43, 5:59] = True
    mask[18:30, 24:40] = False  # an erased hole
    window.document.replace_mask(mask, "test mask")
    canvas = window.canvas
    assert canvas.boundary_item.isVisible() and not canvas.overlay_item.isVisible()
    (hole,) = canvas.holes
    x, y = hole[:, 0], hole[:, 1]
    # The hole's outline runs through the lesion pixels around it.
    assert (x.min(), x.max(), y.min(), y.max()) == (23, 40, 17, 30)
    drawn = canvas.boundary_item.path().toSubpathPolygons()
    assert len(drawn) == 2  # the outer boundary and the hole's
    mask[18:30, 24:40] = True  # painted over again
    window.document.replace_mask(mask, "test mask")
    assert canvas.holes == [] and len(canvas.boundary_item.path().toSubpathPolygons()) == 1
