"""GPU check and timing: run on a CUDA machine. Compares GPU results with CPU results (grid values, HVPs,
eigenpairs) for the built-in digits CNN, and times the batched (vmap) path against the plain loop for that
CNN and for a model large enough to fill the GPU (a wide MLP on random data). Where no CUDA device is
present it says so and exits 0.

    python benchmarks/gpu.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from landform import Objective, grid_landscape, hessian_eigenpairs, random_directions
from landform.recipes.digits import load_digits_tensors, train_digits_cnn


def timed(fn, reps=3):
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured (run this on a GPU machine)")
        return 0
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    model, _ = train_digits_cnn()
    (x, y), _ = load_digits_tensors()
    cpu = Objective(model, (x, y), torch.nn.functional.cross_entropy)
    gpu_model = train_digits_cnn()[0].to(dev)
    gpu_model.load_state_dict(model.state_dict())
    gpu = Objective(gpu_model, (x.to(dev), y.to(dev)), torch.nn.functional.cross_entropy)
    d = random_directions(cpu, 2, seed=0)
    a = grid_landscape(cpu, d, span=0.5, resolution=11, progress=False)
    b = grid_landscape(gpu, d.vectors.to(dev), span=0.5, resolution=11, progress=False)
    print(
        f"grid values, GPU vs CPU: max relative difference {np.max(np.abs(a.values - b.values) / np.abs(a.values)):.2e}"
    )
    v = torch.randn(cpu.num_params)
    hv_c, hv_g = cpu.hvp(v), gpu.hvp(v.to(dev)).cpu()
    print(f"HVP, GPU vs CPU: relative difference {float((hv_c - hv_g).norm() / hv_c.norm()):.2e}")
    ec, eg = hessian_eigenpairs(cpu, 3), hessian_eigenpairs(gpu, 3)
    print(
        f"top-3 eigenvalues CPU {np.round(ec.values, 5).tolist()} GPU {np.round(eg.values, 5).tolist()}; GPU residuals {eg.residuals}"
    )
    thetas = gpu.theta0 + 0.01 * torch.randn(256, gpu.num_params, device=dev)
    for name, obj_args in [
        ("digits CNN", (gpu_model, (x.to(dev), y.to(dev)), torch.nn.functional.cross_entropy)),
        (
            "wide MLP (about 50M parameters)",
            (
                torch.nn.Sequential(
                    torch.nn.Linear(1024, 4096),
                    torch.nn.ReLU(),
                    torch.nn.Linear(4096, 4096),
                    torch.nn.ReLU(),
                    torch.nn.Linear(4096, 10),
                ).to(dev),
                (torch.randn(4096, 1024, device=dev), torch.randint(0, 10, (4096,), device=dev)),
                torch.nn.functional.cross_entropy,
            ),
        ),
    ]:
        loop = Objective(*obj_args, batch_mode="loop")
        vm = Objective(*obj_args, batch_mode="vmap", point_batch_size=32)
        th = loop.theta0 + 0.01 * torch.randn(64, loop.num_params, device=dev)
        tl = timed(lambda: loop.loss_batch(th))
        tv = timed(lambda: vm.loss_batch(th))
        print(f"{name}: 64 points, loop {tl:.3f} s, vmap {tv:.3f} s -> vmap/loop = {tv / tl:.2f}")
    del thetas
    return 0


if __name__ == "__main__":
    sys.exit(main())
