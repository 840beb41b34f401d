"""The window's parts work without the window (issue 17): the layout hands back what it made, and the calibration
and model controllers get only the document, their widgets and the settings, and talk by signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMainWindow

from app.calibration import CalibrationBox, CalibrationController
from app.calibration_profiles import ProfileStore
from app.document import LesionDocument
from app.folder_panel import FolderPanel
from app.folder_states import FolderStates
from app.layout import MENUS, build_layout, build_menus
from app.model_state import ModelController
from app.panels import Banner
from app.settings import Settings
from app.status import StatusBar
from app.tools import Tool
from app.workers import new_pool
from segmentation.calibration import Calibration

WAIT_MS = 15_000


def test_the_layout_returns_its_parts_and_sets_nothing_on_the_window(qtbot) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    canvas, folder = QLabel("canvas"), FolderPanel(FolderStates(LesionDocument()))
    before = set(vars(window))
    parts = build_layout(window, canvas, folder)
    assert set(vars(window)) == before, "no attributes set on the window from outside"
    assert window.statusBar() is parts.status and window.centralWidget().isAncestorOf(canvas)
    assert parts.lesion_dock.widget().widget().isAncestorOf(parts.calibration_box)
    actions = {name: window.addAction(name) for _title, names in MENUS for name in names if name != "-"}
    toolbar = build_menus(window, actions, (folder, parts.lesion_dock))
    assert toolbar.parent() is window and set(vars(window)) == before
    view = next(menu for menu in window.menuBar().actions() if menu.text() == "&View").menu()
    assert folder.toggleViewAction() in view.actions() and parts.lesion_dock.toggleViewAction() in view.actions()


def test_calibration_controller_needs_the_document_and_its_box_only(qtbot, monkeypatch, tmp_path: Path) -> None:
    document, box = LesionDocument(), CalibrationBox()
    qtbot.addWidget(box)
    controller = CalibrationController(document, box, ProfileStore(tmp_path / "profiles.json"))
    tools: list[Tool] = []
    messages: list[str] = []
    controller.toolRequested.connect(tools.append)
    controller.message.connect(messages.append)
    document.open_image(Path("a.png"), np.zeros((20, 30, 3), np.uint8))
    box.measure_button.click()
    assert tools == [Tool.CALIBRATE]
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *args, **kwargs: (5.0, True)))
    controller.line_drawn(80.0)
    assert document.calibration == Calibration(0.0625, "measured")
    assert tools == [Tool.CALIBRATE, Tool.NAVIGATE] and "0.0625" in messages[-1]
    assert "measured" in box.source_label.text(), "the box follows the document"
    assert controller.save_profile("Dermlite") == "Dermlite"
    document.set_calibration(None)
    assert controller.apply_profile("Dermlite") and document.calibration == Calibration(0.0625, "profile", "Dermlite")
    box.clear_button.click()
    assert document.calibration is None and "Not calibrated" in box.source_label.text()


def test_model_controller_needs_the_settings_a_pool_and_its_widgets(qtbot, monkeypatch, tiny_weights: Path) -> None:
    status, banner = StatusBar(), Banner(button_text="Choose weights…")
    qtbot.addWidget(status)
    qtbot.addWidget(banner)
    controller = ModelController(Settings(device="cpu"), new_pool(1), status, banner)
    with qtbot.waitSignal(controller.loaded, timeout=WAIT_MS) as loaded:
        controller.load(tiny_weights)
    assert loaded.args == [True] and controller.predictor is not None
    assert "untrained-test-model" in status.model_label.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args: (str(tiny_weights), "")))
    with qtbot.waitSignal(controller.weightsChosen) as chosen:
        controller.choose()
    assert chosen.args == [tiny_weights], "the window remembers and loads it, not the controller"
    with qtbot.waitSignal(controller.loaded, timeout=WAIT_MS) as loaded:
        controller.load(tiny_weights.parent / "missing.safetensors")
    assert loaded.args == [False] and "Segmentation is off" in banner.text()
