"""The folder list's "exported" state is read from the exports' own ownership record (issue 15 item 7), not from
the last export folder used: exporting to another folder does not make the first forget, and an export whose mask
was changed or deleted outside LesionLens no longer counts."""

from __future__ import annotations

from pathlib import Path

from app.folder_states import EXPORTED

WAIT_MS = 15_000


def _reopened_state(make_window, folder: Path, image: Path, qtbot) -> str | None:
    window = make_window()
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([folder])
    return window.folder_panel.state(image)


def test_exported_state_survives_exporting_elsewhere(window, make_window, image_folder: Path, qtbot) -> None:
    source = image_folder / "lesion_0.png"
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([image_folder])
    first, second = image_folder.parent / "first", image_folder.parent / "second"
    for out in (first, second):
        with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
            assert window.export(out)
    (second / "lesion_0_segmentation.png").unlink()  # the last folder used no longer has it; the first still does
    assert _reopened_state(make_window, image_folder, source, qtbot) == EXPORTED
    (first / "lesion_0_segmentation.png").write_bytes(b"changed outside LesionLens")
    assert _reopened_state(make_window, image_folder, source, qtbot) != EXPORTED


def test_the_window_state_is_kept_in_the_private_data_folder(tmp_path: Path, monkeypatch) -> None:
    """Qt's own state (geometry, docks) used to go to ~/.config/LesionLens/LesionLens.conf, outside the private
    folder, beside export paths; now it is an ini file in the 0700 data folder and ~/.config is not touched. (Export
    folders are in settings.json, one store.)"""
    import stat

    from app.persistence import window_settings

    monkeypatch.delenv("LESIONLENS_HOME")
    for name, folder in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    state = window_settings()
    state.setValue("geometry", b"\x01\x02")
    state.sync()
    data = tmp_path / "data" / "lesionlens"
    assert (data / "window.ini").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert not (tmp_path / "config").exists() and not (tmp_path / "home" / ".config").exists()
