# The two commands of the README: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test bench clean
setup:
	scripts/setup.sh

demo: setup
	$(PY) -m pose_factory demo --out out/demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_render.py

clean:
	rm -rf out .cache .pytest_cache
