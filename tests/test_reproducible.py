"""The built-in example gives bitwise the same model and landscape on any thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CODE = """
import hashlib, json, torch
from landform import Objective, grid_landscape, random_directions
from landform.recipes.digits import recipe
rec = recipe(epochs=2)
h = hashlib.sha256()
for k, v in rec.model.state_dict().items():
    h.update(k.encode()); h.update(v.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
obj = Objective(rec.model, rec.data, rec.loss_fn)
ls = grid_landscape(obj, random_directions(obj, 2, seed=0), span=1.0, resolution=5, progress=False)
print(json.dumps({"threads": torch.get_num_threads(), "weights": h.hexdigest(), "values": ls.values.tolist()}))
"""


def _run(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_digits_recipe_is_bitwise_identical_on_1_and_2_threads():
    one, two = _run(1), _run(2)
    assert (one["threads"], two["threads"]) == (1, 2)  # the processes did use different thread counts
    assert one["weights"] == two["weights"]
    assert one["values"] == two["values"]  # float64 lists: bitwise
