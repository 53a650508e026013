# The two commands of the README: `make demo` and `make test`.
PY := .venv/bin/python
PY_COMFY := .venv-comfy/bin/python

.PHONY: setup setup-comfy-side demo test test-worker-side test-comfy-side bench clean rig-template
setup:
	scripts/setup.sh

# The ComfyUI-side venv (DESIGN.md §2): numpy 2.x and the newest opencv-python, as a user's ComfyUI has them.
setup-comfy-side:
	scripts/setup_comfy_side.sh

demo: setup
	$(PY) -m pose_factory demo

# Both suites: the whole suite in .venv (bpy, MediaPipe, runpod), then the ComfyUI-side tests in
# .venv-comfy; the second runs even when the first fails, and either failing fails `make test`.
test: setup setup-comfy-side
	@status=0; \
	$(MAKE) --no-print-directory test-worker-side || status=1; \
	$(MAKE) --no-print-directory test-comfy-side || status=1; \
	exit $$status

test-worker-side: setup
	$(PY) -m pytest -q

# Tests that need neither bpy nor MediaPipe nor runpod (marked `blender` / `mediapipe`, or importorskip).
test-comfy-side: setup-comfy-side
	$(PY_COMFY) -m pytest -q -m "not blender and not mediapipe"

bench: setup
	$(PY) bench/bench_render.py
	$(PY) bench/bench_render.py --calibrate
	$(PY) bench/bench_estimate.py
	$(PY) bench/bench_props.py
	$(PY) bench/bench_people.py
	$(PY) bench/bench_rig.py
	$(PY) bench/bench_keypoint_fit.py
	$(PY) bench/bench_download.py
	$(PY) bench/bench_client.py
	$(PY) bench/bench_loaders.py
	$(PY) bench/bench_sync.py
	$(PY) bench/bench_png_bomb.py
	$(PY) bench/bench_visibility_cut.py
	$(PY) bench/bench_fit.py

# The custom-rig template's rig (example_workflows/input/3d/pose_factory_mannequin_rig.glb): the
# mannequin as a Mixamo-named GLB written by Blender's own exporter, byte for byte the same each time
# (docs/rigs.md; tests/test_make_rig.py checks the committed file is what this writes).
rig-template:
	$(PY) -m blender_scripts.make_rig --template

clean:
	rm -rf out .cache .pytest_cache
