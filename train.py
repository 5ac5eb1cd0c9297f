"""Train an ECG classifier: `python train.py model=resnet_small` (see README). The same as `ecglit-train`."""

from ecglit.cli import train

if __name__ == "__main__":
    train("train.py")
