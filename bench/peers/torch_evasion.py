"""PyTorch peer for bench/evasion.js: FGSM and PGD written the usual way in PyTorch, run on
the very weights of Bulwark's digits MLP (784-256-10, ReLU; dropout is off at inference),
so robust accuracy and speed compare like for like.

PGD: L-inf, eps, `steps` steps of size 2.5*eps/steps, a uniform random start, projection onto
the eps-ball and [0, 1] after every step, no early stop -- the settings bench/evasion.js gives
Bulwark's pgd(). --loss picks what both FGSM and PGD climb: 'ce' (summed cross-entropy) or
'margin' (max_{j != y} z_j - z_y, Carlini & Wagner), as Bulwark's `loss` option. Only the attack
loop is timed.

Prints one JSON line. When torch cannot be imported it prints {"skipped": "..."} and exits 3.
"""
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # the caller turns this into a skipped figure
    print(json.dumps({"skipped": f"python3-torch not installed (apt-get install python3-torch): {e}"}))
    sys.exit(3)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="folder with w1.npy b1.npy w2.npy b2.npy x.npy y.npy")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--loss", choices=["ce", "margin"], default="ce")
    a = p.parse_args()
    load = lambda name: np.load(os.path.join(a.dir, name))

    torch.manual_seed(a.seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    with torch.no_grad():
        # TF.js kernels are [in, out]; torch weights are [out, in].
        model[1].weight.copy_(torch.from_numpy(load("w1.npy")).T)
        model[1].bias.copy_(torch.from_numpy(load("b1.npy")))
        model[3].weight.copy_(torch.from_numpy(load("w2.npy")).T)
        model[3].bias.copy_(torch.from_numpy(load("b2.npy")))
    model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    x = torch.from_numpy(load("x.npy").astype(np.float32))
    y = torch.from_numpy(load("y.npy").astype(np.int64))
    ce = nn.CrossEntropyLoss(reduction="sum")

    def margin(z, target):
        true = z.gather(1, target[:, None])[:, 0]
        rival = z.masked_fill(nn.functional.one_hot(target, z.shape[1]).bool(), float("-inf")).max(1).values
        return (rival - true).sum()

    loss_fn = ce if a.loss == "ce" else margin

    def accuracy(inp):
        with torch.no_grad():
            return float((model(inp).argmax(1) == y).float().mean())

    def grad(inp):
        inp = inp.clone().requires_grad_(True)
        loss = loss_fn(model(inp), y)
        (g,) = torch.autograd.grad(loss, inp)
        return g

    eps = a.eps
    fgsm = (x + eps * grad(x).sign()).clamp(0, 1)

    alpha = 2.5 * eps / a.steps
    t0 = time.perf_counter()
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(a.steps):
        adv = adv + alpha * grad(adv).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    seconds = time.perf_counter() - t0

    print(json.dumps({
        "clean_accuracy": accuracy(x),
        "fgsm_robust_accuracy": accuracy(fgsm),
        "pgd_robust_accuracy": accuracy(adv),
        "pgd_seconds": seconds,
        "max_linf": float((adv - x).abs().max()),
        "samples": int(x.shape[0]),
        "loss": a.loss,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
