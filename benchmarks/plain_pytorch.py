"""The baseline: the paper's network in plain eager float32 PyTorch, as one would write it by hand.

    python benchmarks/plain_pytorch.py train DIR --batch-size 64 --steps 12
    python benchmarks/plain_pytorch.py infer DIR --batch-size 64 --ckpt last.ckpt --exams 512
Prints one BENCH_RESULT line: the time after every step/batch (so warm-up can be left out).
"""
import argparse
import json
import resource
import time

import h5py
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecglit.models.resnet import ResNet1d  # the very same network (its defaults are the paper's)

CLASSES = ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]


class Shards(Dataset):  # every exam of DIR/exams_part*.hdf5 (not exam_id 0), labels from exams.csv
    def __init__(self, root):
        self.paths = sorted(root.glob("exams_part*.hdf5"))
        self.rows = [(k, r) for k, p in enumerate(self.paths) for r in np.flatnonzero(h5py.File(p)["exam_id"][:])]
        labels = pd.read_csv(root / "exams.csv").set_index("exam_id")[CLASSES].astype("float32")
        ids = [h5py.File(self.paths[k])["exam_id"][r] for k, r in self.rows]
        self.y, self.files = labels.loc[ids].to_numpy(), {}

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        k, r = self.rows[i]
        f = self.files.get(k) or self.files.setdefault(k, h5py.File(self.paths[k], "r"))
        return torch.from_numpy(f["tracings"][r].T.copy()), torch.from_numpy(self.y[i])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "infer"]); p.add_argument("root", type=__import__("pathlib").Path)
    p.add_argument("--batch-size", type=int, default=64); p.add_argument("--steps", type=int, default=12)
    p.add_argument("--ckpt"); p.add_argument("--exams", type=int, default=512)
    a = p.parse_args()
    torch.manual_seed(0)
    net, stamps, faults = ResNet1d(), [time.perf_counter()], [resource.getrusage(0).ru_minflt]
    if a.mode == "train":
        opt, loss_fn = torch.optim.Adam(net.parameters(), lr=1e-3), nn.BCEWithLogitsLoss()
        for step, (x, y) in enumerate(DataLoader(Shards(a.root), a.batch_size, shuffle=True, drop_last=True)):
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
            stamps.append(time.perf_counter()), faults.append(resource.getrusage(0).ru_minflt)
            if step + 1 == a.steps:
                break
    else:
        state = torch.load(a.ckpt, map_location="cpu", weights_only=True)["state_dict"]
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        net.eval()
        loader = DataLoader(Shards(a.root), a.batch_size)
        with torch.no_grad():
            for x, _ in loader:
                probs = torch.sigmoid(net(x))  # noqa: F841 (the probabilities a service would return)
                stamps.append(time.perf_counter()), faults.append(resource.getrusage(0).ru_minflt)
                if (len(stamps) - 1) * a.batch_size >= a.exams:
                    break
    print("BENCH_RESULT " + json.dumps({"stamps": stamps, "faults": faults, "batch_size": a.batch_size}), flush=True)


if __name__ == "__main__":
    main()
