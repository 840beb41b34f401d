"""Trainer: smoke training on real images, resume, determinism, losses, evaluation, export, DDP."""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segmentation.inference import Predictor
from segmentation.network import NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.weights import save_weights
from trainer.config import TrainConfig, preset
from trainer.engine import Trainer, learning_rate_factor
from trainer.evaluate import evaluate_folder
from trainer.export import export_run
from trainer.losses import dice_loss, focal_loss

REPO = Path(__file__).resolve().parent.parent
ISIC = REPO.parent / "shared" / "datasets" / "isic2017"


def _make_split(root: Path, name: str, count: int, seed: int) -> tuple[Path, Path]:
    """A small ISIC-layout split: real ISIC 2017 images when ../shared is present, else synthetic lesions."""
    images, masks = root / f"{name}_images", root / f"{name}_masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    source = ISIC / ("ISIC-2017_Training_Data" if name == "train" else "ISIC-2017_Validation_Data")
    if source.is_dir():
        truth = ISIC / (
            "ISIC-2017_Training_Part1_GroundTruth" if name == "train" else "ISIC-2017_Validation_Part1_GroundTruth"
        )
        for image in sorted(source.glob("ISIC_*.jpg"))[:count]:
            shutil.copy(image, images / image.name)
            shutil.copy(truth / f"{image.stem}_segmentation.png", masks / f"{image.stem}_segmentation.png")
        return images, masks
    rng = np.random.default_rng(seed)
    for index in range(count):
        yy, xx = np.mgrid[:96, :128]
        cy, cx, r = rng.integers(30, 66), rng.integers(40, 88), rng.integers(12, 28)
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        rgb = np.full((96, 128, 3), (220, 180, 160), np.uint8)
        rgb[lesion] = (110, 70, 50)
        rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(images / f"ISIC_{index:07d}.jpg")
        Image.fromarray(lesion.astype(np.uint8) * 255).save(masks / f"ISIC_{index:07d}_segmentation.png")
    return images, masks


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("isic")
    train_images, train_masks = _make_split(root, "train", 12, 0)
    val_images, val_masks = _make_split(root, "val", 4, 1)
    return {
        "train_images": str(train_images),
        "train_masks": str(train_masks),
        "val_images": str(val_images),
        "val_masks": str(val_masks),
        "cache_dir": str(root / "cache"),
    }


def smoke_config(data: dict, **overrides) -> TrainConfig:
    return preset("smoke").override({**data, **overrides})


def _log(run_dir: Path) -> list[dict]:
    with (run_dir / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_smoke_training_writes_a_complete_run_folder(data, tmp_path):
    run_dir = tmp_path / "run"
    best = Trainer(smoke_config(data), run_dir, device="cpu", quiet=True).fit()
    assert {"config.json", "log.csv", "curves.png", "best.pt", "last.pt"} <= {p.name for p in run_dir.iterdir()}
    rows = _log(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert 0.0 <= best <= 1.0
    assert all(math.isfinite(float(r["train_loss"])) and float(r["seconds"]) >= 0 for r in rows)
    assert TrainConfig.load(run_dir / "config.json") == smoke_config(data)
    assert not list(run_dir.glob("*.tmp"))


def test_same_seed_gives_the_same_first_epoch_loss(data, tmp_path):
    losses = []
    for name in ("a", "b"):
        Trainer(smoke_config(data, epochs=1), tmp_path / name, device="cpu", quiet=True).fit()
        losses.append(_log(tmp_path / name)[0]["train_loss"])
    assert losses[0] == losses[1]
    Trainer(smoke_config(data, epochs=1, seed=7), tmp_path / "c", device="cpu", quiet=True).fit()
    assert _log(tmp_path / "c")[0]["train_loss"] != losses[0]


def test_resume_equals_uninterrupted(data, tmp_path):
    straight = Trainer(smoke_config(data, epochs=3), tmp_path / "straight", device="cpu", quiet=True)
    straight.fit()
    # "Interrupted" after epoch 1: a new process would read config.json and last.pt, as --resume does.
    Trainer(smoke_config(data, epochs=1), tmp_path / "resumed", device="cpu", quiet=True).fit()
    resumed = Trainer(smoke_config(data, epochs=3), tmp_path / "resumed", device="cpu", quiet=True)
    resumed.resume()
    assert resumed.epoch == 1
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert [r["train_loss"] for r in _log(tmp_path / "straight")] == [
        r["train_loss"] for r in _log(tmp_path / "resumed")
    ]


def test_cli_resume_drops_log_rows_of_a_killed_epoch(data, tmp_path):
    run_dir = tmp_path / "run"
    Trainer(smoke_config(data, epochs=1), run_dir, device="cpu", quiet=True).fit()
    with (run_dir / "log.csv").open("a") as handle:  # an epoch logged after the last checkpoint, then killed
        handle.write("2,99,0.5,0.5,0.5,0.5,0.001,1.0,1.0\n")
    from trainer.cli import main

    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    assert [int(r["epoch"]) for r in _log(run_dir)] == [1, 2]
    assert _log(run_dir)[1]["step"] != "99"


def test_warm_start_continues_a_lost_run_from_its_exported_weights(data, tmp_path):
    lost = tmp_path / "lost"
    Trainer(smoke_config(data, epochs=2), lost, device="cpu", quiet=True).fit()
    weights = tmp_path / "exported.safetensors"
    info = export_run(lost, weights, name="lost-run")
    best_epoch = int(info.training["epochs_run"])
    from trainer.cli import main

    # The lost folder's log survives elsewhere (docs/training/log.csv in the real project); the folder itself does not.
    shutil.copy(lost / "log.csv", tmp_path / "kept_log.csv")
    shutil.rmtree(lost)
    run_dir = tmp_path / "continued"
    argv = ["train", "--preset", "smoke", "--run-dir", str(run_dir), "--epochs", "3", "--quiet"]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in data.items() if k != "cache_dir"]
    argv += [
        "--cache-dir",
        data["cache_dir"],
        "--warm-start",
        str(weights),
        "--warm-start-log",
        str(tmp_path / "kept_log.csv"),
    ]
    assert main(argv) == 0
    rows = _log(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 4))  # earlier epochs kept, then the continued ones
    assert int(rows[best_epoch]["step"]) > int(rows[best_epoch - 1]["step"])
    assert TrainConfig.load(run_dir / "config.json").warm_start == str(weights)


def test_warm_start_starts_from_the_exported_tensors_and_counters(data, tmp_path):
    Trainer(smoke_config(data, epochs=1), tmp_path / "a", device="cpu", quiet=True).fit()
    weights = tmp_path / "a.safetensors"
    info = export_run(tmp_path / "a", weights, name="a")
    trainer = Trainer(smoke_config(data, epochs=2), tmp_path / "b", device="cpu", quiet=True)
    trainer.warm_start(weights)
    exported = Predictor(weights, "cpu", backend="torch").model.state_dict()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, exported[key]), key
    assert (trainer.epoch, trainer.step) == (1, int(info.training["steps"]))
    assert trainer.best_dice == pytest.approx(info.validation["val_dice_mean_at_selection"])


def test_warm_start_refuses_weights_of_another_network(data, tmp_path):
    weights = tmp_path / "wide.safetensors"
    save_weights(weights, build_model(NetworkConfig(base_width=8)), name="wide", preprocessing=Preprocessing((48, 64)))
    trainer = Trainer(smoke_config(data, epochs=1), tmp_path / "run", device="cpu", quiet=True)
    with pytest.raises(ValueError, match="weights are for"):
        trainer.warm_start(weights)
    save_weights(weights, build_model(NetworkConfig(base_width=4)), name="big", preprocessing=Preprocessing((96, 128)))
    with pytest.raises(ValueError, match="trained at"):
        trainer.warm_start(weights)


def test_fine_tuning_starts_from_the_tensors_at_another_input_size(data, tmp_path):
    """The capacity arm: the 128x160 model fine-tuned at a larger input (the network is fully convolutional); the
    counters start afresh, unlike a warm start, which still refuses another input size."""
    weights = tmp_path / "small-input.safetensors"
    torch.manual_seed(7)
    source = build_model(NetworkConfig(base_width=4))
    save_weights(weights, source, name="small input", preprocessing=Preprocessing((32, 48)))
    trainer = Trainer(smoke_config(data, epochs=1), tmp_path / "run", device="cpu", quiet=True)
    assert trainer.config.input_size == (48, 64)
    trainer.initialise_from(weights)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key
    assert (trainer.epoch, trainer.step, trainer.config.init_weights) == (0, 0, str(weights))
    with pytest.raises(ValueError, match="trained at"):
        Trainer(smoke_config(data, epochs=1), tmp_path / "other", device="cpu", quiet=True).warm_start(weights)


def test_dice_loss_against_hand_computed_values():
    logits = torch.tensor([[[[20.0, -20.0], [20.0, -20.0]]]])  # probabilities ~ [1, 0; 1, 0]
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    # intersection 1, sum p 2, sum y 2: 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4
    assert dice_loss(logits, target).item() == pytest.approx(0.4, abs=1e-6)
    assert dice_loss(logits, (logits > 0).float()).item() == pytest.approx(0.0, abs=1e-6)


def test_focal_loss_against_hand_computed_values():
    p = torch.tensor([0.8, 0.3])
    logits = torch.log(p / (1 - p)).reshape(1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2)
    expected = (-(0.2**2) * math.log(0.8) - (0.3**2) * math.log(0.7)) / 2
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(expected, rel=1e-5)
    # gamma = 0 is plain binary cross-entropy.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(bce.item(), rel=1e-6)


def test_paper_step_schedule_divides_by_ten_every_twenty_epochs():
    config = preset("paper")
    assert (config.learning_rate, config.batch_size, config.epochs, config.repeats) == (3e-4, 16, 250, 4)
    assert learning_rate_factor(config, 0.0, 19) == 1.0
    assert learning_rate_factor(config, 0.0, 20) == pytest.approx(0.1)
    assert learning_rate_factor(config, 0.0, 45) == pytest.approx(0.01)


def test_evaluation_of_a_model_that_calls_everything_lesion(data, tmp_path):
    """A network with a zero head and a large bias predicts lesion everywhere: Dice = 2|T| / (|T| + HW)."""
    model = build_model(NetworkConfig(base_width=4))
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.constant_(model.head.bias, 30.0)
    weights = tmp_path / "all-lesion.safetensors"
    save_weights(weights, model, name="all-lesion", preprocessing=Preprocessing(input_size=(48, 64)))
    summary, rows = evaluate_folder(Predictor(weights, "cpu"), Path(data["val_images"]), Path(data["val_masks"]))
    expected = []
    for row in rows:
        truth = np.asarray(Image.open(Path(data["val_masks"]) / row["image"].replace(".jpg", "_segmentation.png")))
        truth = truth > 127
        expected.append(2 * truth.sum() / (truth.sum() + truth.size))
        assert row["recall"] == 1.0 and row["specificity"] == 0.0
    assert summary.n_images == len(rows) == 4
    assert summary.mean["dice"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert summary.ci["dice"][0] <= summary.mean["dice"] <= summary.ci["dice"][1]


def test_export_round_trip_loads_in_the_predictor_with_the_same_outputs(data, tmp_path):
    run_dir = tmp_path / "run"
    trainer = Trainer(smoke_config(data, epochs=1), run_dir, device="cpu", quiet=True)
    trainer.fit()
    out = tmp_path / "exported.safetensors"
    info = export_run(run_dir, out, name="smoke")
    predictor = Predictor(out, "cpu")
    assert predictor.info.sha256 == info.sha256
    assert predictor.info.preprocessing.input_size == (48, 64)
    assert predictor.info.training["epochs_run"] == 1
    image = np.asarray(Image.open(next(Path(data["val_images"]).iterdir())).convert("RGB"))
    from segmentation.preprocessing import prepare_input

    trainer.model.eval()
    with torch.inference_mode():
        expected = torch.sigmoid(
            trainer.model(torch.from_numpy(prepare_input(image, predictor.info.preprocessing))[None])
        )
    from segmentation.inference import upsample_probability

    expected = upsample_probability(expected[0, 0].numpy(), image.shape[:2])
    np.testing.assert_allclose(predictor.predict_probability(image), expected, atol=1e-5)


def test_onnx_export_matches_pytorch(data, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    run_dir = tmp_path / "run"
    Trainer(smoke_config(data, epochs=1), run_dir, device="cpu", quiet=True).fit()
    export_run(run_dir, tmp_path / "m.safetensors", name="smoke", onnx=tmp_path / "m.onnx")
    predictor = Predictor(tmp_path / "m.safetensors", "cpu")
    from segmentation.preprocessing import prepare_input

    image = np.asarray(Image.open(next(Path(data["val_images"]).iterdir())).convert("RGB"))
    batch = prepare_input(image, predictor.info.preprocessing)[None]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    onnx_logits = session.run(None, {"image": batch})[0]
    with torch.inference_mode():
        torch_logits = predictor.model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)


@pytest.mark.slow  # a subprocess
def test_two_process_ddp_training_with_gloo(data, tmp_path):
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "trainer",
        "train",
        "--preset",
        "smoke",
        "--run-dir",
        str(run_dir),
        "--device",
        "cpu",
        "--quiet",
        "--train-images",
        data["train_images"],
        "--train-masks",
        data["train_masks"],
        "--val-images",
        data["val_images"],
        "--val-masks",
        data["val_masks"],
        "--cache-dir",
        data["cache_dir"],
        "--epochs",
        "1",
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _log(run_dir)
    assert len(rows) == 1
    # 12 images, batch 4 per process, 2 processes: 1 step of 8 images per process per... 12 // 8 -> steps
    assert int(rows[0]["step"]) == 12 // 2 // 4
    assert (run_dir / "best.pt").exists()


def _data_args(data: dict) -> list[str]:
    return [
        "--train-images",
        data["train_images"],
        "--train-masks",
        data["train_masks"],
        "--val-images",
        data["val_images"],
        "--val-masks",
        data["val_masks"],
    ]


@pytest.mark.slow  # a training run
def test_ablation_runs_end_to_end_on_cpu_with_a_small_preset(data, tmp_path):
    from trainer.cli import main

    out = tmp_path / "ablation"
    args = [
        "ablation",
        "--preset",
        "smoke",
        "--steps",
        "2",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--set",
        f"cache_dir={data['cache_dir']}",
        *_data_args(data),
    ]
    assert main(args) == 0
    table = (out / "table.md").read_text()
    for name in ("UNet |", "RMSM UNet |", "+ DF-RAM", "+ EF-RAM", "Proposed"):
        assert name in table
    assert "±" in table and "parameters" in table
    import json

    results = json.loads((out / "results.json").read_text())
    assert len(results) == 10 and all(r["steps"] == 2 for r in results.values())


@pytest.mark.slow  # a training run
def test_gpu_script_runs_on_cpu_and_writes_at_most_eight_files(tmp_path):
    """The lent-GPU command, rehearsed on the CPU with the ISIC layout it will get there."""
    from trainer.cli import main

    root = tmp_path / "isic2017"
    root.mkdir()
    layout = {
        "train": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
        "val": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
    }
    for split, (image_folder, mask_folder) in layout.items():
        images, masks = _make_split(tmp_path / split, split, 8, 3)
        images.rename(root / image_folder)
        masks.rename(root / mask_folder)
    out = tmp_path / "out"
    assert (
        main(
            [
                "gpu-run",
                "--data",
                str(root),
                "--minutes",
                "0.05",
                "--out",
                str(out),
                "--preset",
                "smoke",
                "--run-dir",
                str(tmp_path / "run"),
                "--set",
                f"cache_dir={tmp_path / 'cache'}",
                "num_workers=0",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8
    assert {"lesionlens-gpu.safetensors", "log.csv", "curves.png", "config.json", "summary.json"} <= set(files)
    assert Predictor(out / "lesionlens-gpu.safetensors", "cpu").info.name == "lesionlens-gpu-smoke"


@pytest.mark.parametrize(
    ("image_folder", "mask_folder", "mask_suffix"),
    [
        ("ISBI2016_ISIC_Part1_Training_Data", "ISBI2016_ISIC_Part1_Training_GroundTruth", "_Segmentation.png"),
        ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth", "_segmentation.png"),
        ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth", "_segmentation.png"),
    ],
    ids=["2016", "2017", "2018"],
)
def test_official_isic_layouts_are_found(tmp_path, image_folder, mask_folder, mask_suffix):
    from trainer.data import find_samples, isic_split_folders

    (tmp_path / image_folder).mkdir()
    (tmp_path / mask_folder).mkdir()
    (tmp_path / "ISIC-2017_Training_Part2_GroundTruth").mkdir()  # another task's ground truth is ignored
    for index in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / image_folder / f"ISIC_{index:07d}.jpg")
        Image.new("L", (8, 8)).save(tmp_path / mask_folder / f"ISIC_{index:07d}{mask_suffix}")
    samples = find_samples(*isic_split_folders(tmp_path, "Training"))
    assert [s.image.name for s in samples] == [f"ISIC_{i:07d}.jpg" for i in range(3)]
    assert all(s.mask.exists() for s in samples)


def test_missing_masks_are_named(tmp_path):
    from trainer.data import DatasetError, find_samples

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "ISIC_0000001.jpg")
    with pytest.raises(DatasetError, match=re.escape("ISIC_0000001_segmentation.png")):
        find_samples(tmp_path / "images", tmp_path / "masks")


def test_a_mask_of_another_size_than_its_image_is_refused(tmp_path):
    from trainer.data import CachedSplit, DatasetError, Sample

    Image.new("RGB", (16, 12)).save(tmp_path / "ISIC_0000001.jpg")
    Image.new("L", (8, 8)).save(tmp_path / "ISIC_0000001_segmentation.png")
    sample = Sample(tmp_path / "ISIC_0000001.jpg", tmp_path / "ISIC_0000001_segmentation.png")
    with pytest.raises(DatasetError, match=re.escape("mask is 8x8 but its image ISIC_0000001.jpg is 16x12")):
        CachedSplit([sample], Preprocessing(input_size=(8, 8)), tmp_path / "cache")


def test_evaluate_command_writes_json_csv_and_the_paper_row(data, tmp_path, capsys):
    from trainer.cli import main

    model = build_model(NetworkConfig(base_width=4))
    weights = tmp_path / "m.safetensors"
    save_weights(weights, model, name="untrained", preprocessing=Preprocessing(input_size=(48, 64)))
    args = ["evaluate", "--weights", str(weights), "--images", data["val_images"], "--masks", data["val_masks"],
            "--device", "cpu", "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv"),
            "--compare-paper", "validation"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "94.53" in printed and "84.19" in printed  # Table II's full-model DC and JSI beside ours
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["n_images"] == 4 and set(summary["metrics"]) >= {"dice", "jaccard", "thresholded_jaccard"}
    with (tmp_path / "s.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {"image", "dice", "recall", "seconds"} <= set(rows[0])


HAM = REPO.parent / "shared" / "datasets" / "ham10000"


def test_two_sources_a_hold_out_set_and_their_record_in_the_weights(data, tmp_path):
    """A second source with its share, the HAM hold-out logged as a second validation set, never trained on."""
    from trainer.data import Source
    from trainer.options import parse_source
    from trainer.splits import HoldoutSplit

    if not HAM.is_dir():
        pytest.skip(f"HAM10000 not found at {HAM} (it lives in ../shared)")
    held = HoldoutSplit.load().image_ids[:3]
    ham_images, ham_masks = tmp_path / "ham" / "images", tmp_path / "ham" / "masks"
    ham_images.mkdir(parents=True)
    ham_masks.mkdir(parents=True)
    training_only = sorted(p.stem for p in (HAM / "images").glob("ISIC_*.jpg") if p.stem not in set(held))[:4]
    for stem in (*held, *training_only):
        shutil.copy(HAM / "images" / f"{stem}.jpg", ham_images)
        shutil.copy(HAM / "masks" / f"{stem}_segmentation.png", ham_masks)
    source = parse_source(f"ham10000={ham_images},{ham_masks},0.5")
    assert {s.image_id for s in Source(**source).samples()} == set(training_only)  # the hold-out is never trained on

    config = smoke_config(
        data, epochs=1, sources=(source,), holdout_images=str(ham_images), holdout_masks=str(ham_masks)
    )
    trainer = Trainer(config, tmp_path / "run", device="cpu", quiet=True)
    assert trainer.train_set.counts == [8, 8]  # 12 + 4 draws an epoch, half from each source
    trainer.fit()
    assert 0.0 <= float(_log(tmp_path / "run")[0]["holdout_dice"]) <= 1.0
    assert TrainConfig.load(tmp_path / "run" / "config.json") == trainer.config
    info = export_run(tmp_path / "run", tmp_path / "two.safetensors", name="two-sources")
    sources = info.training["data_sources"]
    assert [s["name"] for s in sources] == ["isic2017", "ham10000"]
    assert sources[1]["share"] == 0.5 and sources[1]["images"] == 4 and "CC BY-NC-SA" in sources[1]["licence"]


def test_a_config_json_from_before_the_sources_still_loads(tmp_path):
    old = preset("cpu").to_dict()
    for key in ("sources", "train_name", "train_share", "epoch_images", "holdout_images", "holdout_masks"):
        old.pop(key)
    for key in ("scale_probability", "photometric_probability", "init_weights"):
        old.pop(key)
    (tmp_path / "config.json").write_text(__import__("json").dumps(old))
    config = TrainConfig.load(tmp_path / "config.json")
    assert [s.name for s in config.training_sources()] == ["isic2017"]
    assert config.scale_probability == 0.0 and config.photometric_probability == 0.0  # as the run was trained


def test_arms_are_compared_image_by_image_with_paired_intervals(data, tmp_path):
    from trainer.arms import comparison, markdown, paired_difference, score_arm

    for name, steps in (("short", 1), ("longer", 6)):
        Trainer(smoke_config(data, epochs=2, max_steps=steps), tmp_path / name, device="cpu", quiet=True).fit()
    sets = {"val": (Path(data["val_images"]), Path(data["val_masks"]), None)}
    arms = [score_arm(tmp_path / name, sets) for name in ("short", "longer")]
    assert [arm.image_steps for arm in arms] == [4, 24]  # steps x batch size 4
    assert len(arms[0].dice["val"]) == 4
    result = comparison(arms)
    other = result["arms"][1]["val"]
    assert other["vs_first"]["mean"] == pytest.approx(np.mean(arms[1].dice["val"]) - np.mean(arms[0].dice["val"]))
    assert "vs_first" not in result["arms"][0]["val"]
    assert "| short |" in markdown(result, "test machine")
    # Paired: a constant gain on every image has a zero-width interval, however spread the images are.
    mean, low, high = paired_difference([0.1, 0.5, 0.9, 0.3], [0.15, 0.55, 0.95, 0.35])
    assert mean == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)


def test_arms_against_their_starting_model_and_contrasts_between_arms(data, tmp_path):
    from trainer.arms import Arm, comparison, markdown, score_reference

    Trainer(smoke_config(data, epochs=1, max_steps=1), tmp_path / "start", device="cpu", quiet=True).fit()
    export_run(tmp_path / "start", tmp_path / "v1.safetensors", name="v1")
    sets = {"val": (Path(data["val_images"]), Path(data["val_masks"]), None)}
    reference = score_reference(tmp_path / "v1.safetensors", sets)
    assert (reference.name, reference.image_steps, reference.sources) == ("v1 (start)", 4, "isic2017")
    assert len(reference.dice["val"]) == 4
    # Known per-image Dice: b - a is +0.1 on every image; each arm is compared with the start, not with arm a.
    start = Arm("v1 (start)", "isic2017", "—", 0, 0.0, {"val": [0.5, 0.6, 0.7, 0.8]})
    a = Arm("a", "isic2017", "paper", 8, 1.0, {"val": [0.4, 0.7, 0.7, 0.6]})
    b = Arm("b", "isic2017", "paper", 8, 1.0, {"val": [0.5, 0.8, 0.8, 0.7]})
    result = comparison([start, a, b], [("b", "a")])
    assert result["baseline"] == "v1 (start)"
    contrast = result["contrasts"][0]
    assert contrast["contrast"] == "b - a"
    assert contrast["val"]["mean"] == pytest.approx(0.1) and contrast["val"]["ci95"] == pytest.approx([0.1, 0.1])
    assert result["arms"][2]["val"]["vs_first"]["mean"] == pytest.approx(0.05)
    table = markdown(result, "test machine")
    assert "| v1 (start) |" in table and "| b - a | +0.1000 (+0.1000 to +0.1000) |" in table
    with pytest.raises(ValueError, match="no arm named c"):
        comparison([start, a, b], [("c", "a")])


def test_arms_refuses_a_contrast_between_unknown_arms_before_scoring(tmp_path):
    from trainer.cli import main

    with pytest.raises(SystemExit, match=r"--contrast b:c: expected B:A, two of the arms' folder names \(a, b\)"):
        main(["arms", str(tmp_path / "a"), str(tmp_path / "b"), "--isic", str(tmp_path), "--contrast", "b:c"])


def test_evaluate_scores_only_the_requested_images(data, tmp_path):
    Trainer(smoke_config(data, epochs=1), tmp_path / "run", device="cpu", quiet=True).fit()
    export_run(tmp_path / "run", tmp_path / "w.safetensors", name="w")
    predictor = Predictor(tmp_path / "w.safetensors", "cpu")
    first = sorted(Path(data["val_images"]).iterdir())[0].stem
    _, rows = evaluate_folder(predictor, Path(data["val_images"]), Path(data["val_masks"]), only={first})
    assert [Path(row["image"]).stem for row in rows] == [first]
    with pytest.raises(ValueError, match="none of the"):
        evaluate_folder(predictor, Path(data["val_images"]), Path(data["val_masks"]), only={"ISIC_nothing"})


def test_arms_table_prints_training_speed_as_a_plain_number():
    """A median over an even number of epochs is a float sum (11.25 and 11.31 give 11.280000000000001): the table
    shows it to two decimals, and a fast GPU's thousands without an exponent."""
    from trainer.arms import markdown

    def row(name: str, speed: float) -> dict:
        score = {"n": 3, "mean": 0.9, "ci95": [0.85, 0.95]}
        return {
            "arm": name,
            "sources": "s",
            "augmentation": "a",
            "image_steps": 8,
            "images_per_second": speed,
            "v": score,
        }

    table = markdown({"baseline": "a", "arms": [row("a", 11.25 / 2 + 11.31 / 2), row("b", 2345.678)]}, "machine")
    assert "| 11.28 |" in table and "| 2345.68 |" in table
    assert "000000" not in table and "e+" not in table
