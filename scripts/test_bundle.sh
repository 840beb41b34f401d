#!/usr/bin/env bash
# make test-bundle: check a built bundle runs on its own, as on a clinic PC without Python.
#
#   scripts/test_bundle.sh [dist/LesionLens]
#
# Every run of the bundle gets an empty environment (env -i) and a scratch working directory, so nothing from this
# machine's Python, .venv or repository can help it. Checks, each failing loudly (after a check that what build.spec
# leaves out stayed out):
#   1. --self-test passes (bundled model, pinned hash, Dice against the Python build's reference) with each backend
#      the bundle has (auto, PyTorch, ONNX Runtime);
#   2. `segment` on two samples exits 0 and writes masks that agree with the Python build's (Dice >= 0.99);
#   3. the window starts (Qt offscreen) and is still running after GUI_SECONDS, with no error logged;
#   4. (Linux) every shared library in the bundle finds the libraries it links against.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUNDLE="$(cd "${1:-$ROOT/dist/LesionLens}" && pwd)"
EXE="$BUNDLE/LesionLens"
PYTHON="$ROOT/.venv/bin/python"
SAMPLES=("$ROOT/resources/samples/ISIC_0012660.jpg" "$ROOT/resources/samples/ISIC_0013127.jpg")
GUI_SECONDS="${GUI_SECONDS:-25}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lesionlens-test-bundle.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS

fail() {
    echo "test-bundle: FAIL: $*" >&2
    exit 1
}
step() { echo "== test-bundle: $* ($((SECONDS - started)) s)"; }

[ -x "$EXE" ] || fail "$EXE not found: run make bundle"
step "bundle $BUNDLE, $(du -sh "$BUNDLE" | cut -f1)"
for left_out in trainer tests pytest hypothesis matplotlib sympy torch/_inductor torch/_dynamo torch/test nvidia; do
    [ ! -e "$BUNDLE/_internal/$left_out" ] || fail "$left_out is in the bundle; build.spec leaves it out"
done

BACKENDS=(auto torch)
[ ! -d "$BUNDLE/_internal/onnxruntime" ] || BACKENDS+=(onnxruntime)
for backend in "${BACKENDS[@]}"; do
    step "self-test, backend $backend (env -i, working directory $WORK)"
    (cd "$WORK" && env -i LESIONLENS_BACKEND="$backend" "$EXE" --self-test) | tee "$WORK/selftest.txt" ||
        fail "--self-test exited non-zero (backend $backend)"
    [ "$(tail -n 1 "$WORK/selftest.txt")" = "PASS" ] || fail "--self-test did not print PASS (backend $backend)"
done

step "segment two images"
(cd "$WORK" && env -i "$EXE" segment "${SAMPLES[@]}" --out "$WORK/masks") || fail "bundled segment exited non-zero"
"$ROOT/.venv/bin/lesionlens" segment "${SAMPLES[@]}" --out "$WORK/masks-python" 2>/dev/null ||
    fail "the Python build's segment exited non-zero"
"$PYTHON" - "$WORK/masks" "$WORK/masks-python" "${SAMPLES[@]}" <<'EOF' || fail "bundled masks differ from the Python build's"
import csv, sys
from pathlib import Path

from segmentation.imageio import read_mask
from segmentation.metrics import ConfusionCounts, dice

bundle, python, samples = Path(sys.argv[1]), Path(sys.argv[2]), [Path(s) for s in sys.argv[3:]]
rows = list(csv.DictReader(open(bundle / "results.csv", encoding="utf-8")))
assert [r["status"] for r in rows] == ["ok"] * len(samples), f"results.csv statuses: {[r['status'] for r in rows]}"
for sample in samples:
    name = f"{sample.stem}_segmentation.png"
    mask, reference = read_mask(bundle / name), read_mask(python / name)
    score = dice(ConfusionCounts.from_masks(mask, reference))
    print(f"{name}: {mask.shape[1]}x{mask.shape[0]}, lesion {mask.mean():.1%} of the image, Dice vs Python {score:.4f}")
    assert mask.any(), f"{name} is empty"
    assert score >= 0.99, f"{name}: Dice {score:.4f} against the Python build"
EOF

step "window starts (Qt offscreen, ${GUI_SECONDS} s)"
status=0
(cd "$WORK" && env -i QT_QPA_PLATFORM=offscreen LESIONLENS_HOME="$WORK/home" \
    timeout "$GUI_SECONDS" "$EXE" "${SAMPLES[0]}" >"$WORK/gui.txt" 2>&1) || status=$?
[ "$status" -eq 124 ] || { cat "$WORK/gui.txt" >&2; fail "the window exited early with status $status"; }
if grep -q "Traceback\|unexpected error" "$WORK/gui.txt" "$WORK/home/lesionlens.log" 2>/dev/null; then
    cat "$WORK/gui.txt" "$WORK/home/lesionlens.log" >&2 2>/dev/null || true
    fail "the window logged an error"
fi

if [ "$(uname -s)" = "Linux" ]; then
    step "shared libraries resolve"
    find "$BUNDLE" -type f \( -name '*.so' -o -name '*.so.*' \) | while read -r library; do
        LD_LIBRARY_PATH="$BUNDLE/_internal" ldd "$library" 2>/dev/null | grep "not found" | sed "s|^|${library#"$BUNDLE"/}:|"
    done | sort -u >"$WORK/missing.txt" || true
    [ ! -s "$WORK/missing.txt" ] || { cat "$WORK/missing.txt" >&2; fail "libraries not found (above)"; }
fi

step "PASS"
