"""PyTorch peer for bench/train.js: the zoo MLP (784-256-10, dropout 0.3) trained the way
Bulwark's loop trains it -- Adam lr 1e-3, batch 128, reshuffled every epoch, no validation
split, running loss and accuracy read back every batch -- so the two timings compare like
for like. Only the training loop is timed, as Bulwark's fit().seconds is.

Prints one JSON line: {"seconds", "test_accuracy", "final_train_loss", "torch", "threads", ...}.
When torch cannot be imported it prints {"skipped": "..."} and exits 3.
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
    p.add_argument("--dir", required=True, help="folder with x_train.npy, y_train.npy, x_test.npy, y_test.npy")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    load = lambda name: np.load(os.path.join(a.dir, name))
    x_train = torch.from_numpy(load("x_train.npy").reshape(-1, 784).astype(np.float32))
    y_train = torch.from_numpy(load("y_train.npy").astype(np.int64))
    x_test = torch.from_numpy(load("x_test.npy").reshape(-1, 784).astype(np.float32))
    y_test = torch.from_numpy(load("y_test.npy").astype(np.int64))

    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
    # Glorot-uniform kernels and zero biases, as the TF.js layers are initialised.
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(a.seed)
    n = x_train.shape[0]

    model.train()
    epoch_loss = float("nan")
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        correct = 0
        for s in range(0, n, a.batch_size):
            idx = order[s : s + a.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad()
            z = model(xb)
            loss = loss_fn(z, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((z.argmax(1) == yb).sum())
        epoch_loss = loss_sum / n
    seconds = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        test_accuracy = float((model(x_test).argmax(1) == y_test).float().mean())

    print(json.dumps({
        "seconds": seconds,
        "test_accuracy": test_accuracy,
        "final_train_loss": epoch_loss,
        "final_train_accuracy": correct / n,
        "epochs": a.epochs,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.executable,
    }))


if __name__ == "__main__":
    main()
